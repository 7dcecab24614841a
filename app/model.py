"""The PyTorch CIFAR-10 tutorial's CNN, its class names, and safe loading of its weights."""

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
INPUT_SHAPE: tuple[int, int, int, int] = (1, 3, 32, 32)


class WeightsError(ValueError):
    """A weights file that cannot be used; the message is meant for the user."""


class DeviceError(ValueError):
    """A device that was asked for but is not available; the message is meant for the user."""


class Net(nn.Module):
    """The tutorial's network, layer for layer and name for name, so state_dicts load both ways."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def pick_device(name: str) -> torch.device:
    """ "auto" -> CUDA when available, else CPU; "cuda" without CUDA raises DeviceError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                "device 'cuda' was asked for but CUDA is not available "
                "(no GPU, or a CPU-only build of PyTorch); use 'cpu' or 'auto'"
            )
        return torch.device("cuda")
    raise DeviceError(f"unknown device {name!r}; expected 'auto', 'cpu' or 'cuda'")


def _unwrap(obj: object, path: Path) -> dict[str, torch.Tensor]:
    """Accept a bare state_dict, or one inside {"state_dict": ...} / {"model_state_dict": ...}."""
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model_state_dict"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj:
        raise WeightsError(f"{path.name}: not a state_dict (found {type(obj).__name__})")
    state: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise WeightsError(f"{path.name}: not a state_dict (entry {key!r} is not a tensor)")
        state[key.removeprefix("module.")] = value
    return state


def _check_state(state: Mapping[str, torch.Tensor], net: Net, path: Path) -> None:
    """Name the first mismatch between the file's tensors and the Net's."""
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if unexpected:
            parts.append("unexpected " + ", ".join(unexpected[:10]))
        raise WeightsError(f"{path.name}: not weights for this Net ({'; '.join(parts)})")
    for key, want in expected.items():
        got = state[key]
        if got.shape != want.shape:
            raise WeightsError(
                f"{path.name}: {key} has shape {tuple(got.shape)}, expected {tuple(want.shape)}"
            )
        if not got.is_floating_point():
            raise WeightsError(f"{path.name}: {key} has dtype {got.dtype}, expected floating point")


def load_net(path: Path, device: torch.device) -> Net:
    """Load Net (or tutorial) weights strictly, in eval mode, with gradients off."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        obj = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:
        raise WeightsError(f"{path.name}: not a PyTorch weights file ({exc})") from exc
    state = _unwrap(obj, path)
    net = Net()
    _check_state(state, net, path)
    net.load_state_dict({k: v.to(torch.float32) for k, v in state.items()}, strict=True)
    net.to(device)
    net.eval()
    net.requires_grad_(False)
    return net


def parameter_count(net: nn.Module) -> int:
    """Number of scalar parameters."""
    return sum(p.numel() for p in net.parameters())


def architecture(net: Net) -> list[dict[str, Any]]:
    """One row per layer as applied in forward(), with shapes for a 1x3x32x32 input."""
    steps: list[tuple[str, str, nn.Module | None]] = [
        ("conv1", "Conv2d", net.conv1),
        ("relu1", "ReLU", None),
        ("pool1", "MaxPool2d", net.pool),
        ("conv2", "Conv2d", net.conv2),
        ("relu2", "ReLU", None),
        ("pool2", "MaxPool2d", net.pool),
        ("flatten", "Flatten", None),
        ("fc1", "Linear", net.fc1),
        ("relu3", "ReLU", None),
        ("fc2", "Linear", net.fc2),
        ("relu4", "ReLU", None),
        ("fc3", "Linear", net.fc3),
    ]
    device = next(net.parameters()).device
    x = torch.zeros(INPUT_SHAPE, device=device)
    rows: list[dict[str, Any]] = []
    with torch.no_grad():
        for name, kind, layer in steps:
            before = tuple(x.shape)
            if kind == "ReLU":
                x = F.relu(x)
            elif kind == "Flatten":
                x = torch.flatten(x, 1)
            else:
                assert layer is not None
                x = layer(x)
            params = 0 if layer is None or kind == "MaxPool2d" else parameter_count(layer)
            rows.append(
                {
                    "name": name,
                    "type": kind,
                    "in_shape": list(before),
                    "out_shape": list(x.shape),
                    "parameters": params,
                    "description": repr(layer) if layer is not None else f"{kind}()",
                }
            )
    return rows


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
