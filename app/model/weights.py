"""Loading the Net's weights safely, choosing its device, and naming a weights file by its hash."""

import hashlib
from collections.abc import Mapping
from pathlib import Path

import torch

from app.engine import InputError
from app.model.net import Net


class WeightsError(InputError):
    """A weights file that cannot be used; the message is meant for the user."""


class DeviceError(InputError):
    """A device that was asked for but is not available; the message is meant for the user."""


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


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
