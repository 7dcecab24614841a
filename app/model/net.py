"""The PyTorch CIFAR-10 tutorial's CNN, its class names, and its layers described."""

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
