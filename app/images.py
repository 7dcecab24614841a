"""Decoding uploaded pictures and turning them into the Net's 3x32x32 input."""

import torch

# The tutorial's transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)): [0, 1] -> [-1, 1].
MEAN = 0.5
STD = 0.5


def normalize(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 RGB (..., 3, H, W) in [0, 255] -> float32 in [-1, 1], as the tutorial's transforms do."""
    return (pixels.to(torch.float32) / 255.0 - MEAN) / STD
