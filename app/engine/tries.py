"""A fixed catalogue of PyTorch calls a learner writes with nn.CrossEntropyLoss, the right ones and
the usual mistakes, run on given tensors by the installed torch. What PyTorch answers, a loss or
the exception it raises, is the result: the error messages shown to learners are this torch's
own, never copied strings. Only these calls ever run; nothing runs that a request sends.

Each call is one or two lines of code (shown to the learner) and a function that runs exactly
those lines; tests/engine/test_tries.py runs the code text itself and holds the two equal. The
lines run after SETUP, with the request's logits, labels and options in place of its names.
"""

import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.engine.loss import Reduction

SETUP: tuple[str, ...] = (
    "outputs = torch.tensor(logits, dtype=torch.float64)  # (N, C), as the network gives them",
    "labels = torch.tensor(target)  # (N,) class indices, int64",
    "criterion = nn.CrossEntropyLoss(weight=weight, ignore_index=ignore_index,",
    "                                reduction=reduction, label_smoothing=label_smoothing)",
)

# What torch raises for input it refuses; anything else is a bug of ours and is not caught.
REFUSALS = (RuntimeError, ValueError, IndexError, TypeError, AttributeError)

# The warning filters are the process's: one thread at a time changes them.
_WARNING_FILTERS = threading.Lock()


@dataclass(frozen=True)
class Call:
    name: str
    code: str  # the lines, as run after SETUP
    description: str
    run: Callable[[Tensor, Tensor, nn.CrossEntropyLoss], Tensor | None]


def _class_called(outputs: Tensor, labels: Tensor, _: nn.CrossEntropyLoss) -> Tensor | None:
    # The class where its instance belongs: the tensors land in `weight` and `size_average`
    # (torch/nn/modules/loss.py), so a batch of more than one label is asked for its truth
    # value; one label makes a module, which has no backward().
    loss = nn.CrossEntropyLoss(outputs, labels)
    loss.backward()  # type: ignore[operator]
    return None


CALLS: dict[str, Call] = {
    call.name: call
    for call in (
        Call(
            "index",
            "loss = criterion(outputs, labels)",
            "The tutorial's call: class indices.",
            lambda outputs, labels, criterion: criterion(outputs, labels),
        ),
        Call(
            "one_hot_float",
            "loss = criterion(outputs, F.one_hot(labels, outputs.size(1)).float())",
            "One-hot targets as floats: read as class probabilities.",
            lambda outputs, labels, criterion: criterion(
                outputs, F.one_hot(labels, outputs.size(1)).float()
            ),
        ),
        Call(
            "one_hot_long",
            "loss = criterion(outputs, F.one_hot(labels, outputs.size(1)))",
            "One-hot targets as F.one_hot makes them, int64.",
            lambda outputs, labels, criterion: criterion(
                outputs, F.one_hot(labels, outputs.size(1))
            ),
        ),
        Call(
            "labels_float",
            "loss = criterion(outputs, labels.float())",
            "Class indices as floats.",
            lambda outputs, labels, criterion: criterion(outputs, labels.float()),
        ),
        Call(
            "float32",
            "loss = criterion(outputs.float(), labels)",
            "The tutorial's call in float32, as the network computes.",
            lambda outputs, labels, criterion: criterion(outputs.float(), labels),
        ),
        Call(
            "class_called",
            "loss = nn.CrossEntropyLoss(outputs, labels)\nloss.backward()",
            "The class called with the data, where its instance belongs.",
            _class_called,
        ),
    )
}


def catalogue() -> dict[str, Any]:
    """SETUP and each call's name, code and description, as plain values."""
    calls = [{"name": c.name, "code": c.code, "description": c.description} for c in CALLS.values()]
    return {"setup": list(SETUP), "calls": calls}


@dataclass(frozen=True)
class Tried:
    """PyTorch's answer to a call: the loss (float64, on the CPU), or the exception raised."""

    value: Tensor | None
    error_type: str | None = None
    error_message: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_type is None

    @property
    def error_text(self) -> str:
        """The error as Python prints its last line: 'RuntimeError: ...'."""
        return f"{self.error_type}: {self.error_message}"


def run_call(
    name: str,
    outputs: Tensor,
    labels: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
    label_smoothing: float = 0.0,
) -> Tried:
    """Run CALLS[name] on these tensors after SETUP's criterion; KeyError for an unknown name."""
    call = CALLS[name]
    with _WARNING_FILTERS, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # e.g. the size_average deprecation notice
        try:
            criterion = nn.CrossEntropyLoss(
                weight=weight,
                ignore_index=ignore_index,
                reduction=reduction,
                label_smoothing=label_smoothing,
            )
            loss = call.run(outputs, labels, criterion)
        except REFUSALS as e:
            return Tried(None, type(e).__name__, str(e))
    return Tried(None if loss is None else loss.detach().to("cpu", torch.float64))
