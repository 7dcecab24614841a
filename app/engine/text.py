"""How the engine's sentences write shapes, positions, dtypes and numbers."""

import math
from collections.abc import Iterable

import torch
from torch import Tensor


def shape_text(shape: Iterable[int]) -> str:
    """A shape as the messages write it: (2, 3), or (0) for an empty list."""
    return "(" + ", ".join(map(str, shape)) + ")"


def position_text(index: tuple[int, ...]) -> str:
    """An index as the messages write it: [1, 0]."""
    return "[" + ", ".join(map(str, index)) + "]"


def first_true(mask: Tensor) -> tuple[int, ...]:
    """The index of the first True in a bool tensor, as a tuple usable for indexing."""
    return tuple(int(i) for i in torch.nonzero(mask)[0])


def dtype_text(t: Tensor) -> str:
    """The dtype without its module: float32, int64, bool."""
    return str(t.dtype).removeprefix("torch.")


def non_finite_text(t: Tensor) -> str:
    """A 0-d tensor that is not finite, as a sentence says it: NaN, +inf or -inf."""
    x = float(t)
    return "NaN" if math.isnan(x) else f"{x:+g}"
