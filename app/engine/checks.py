"""What cross_entropy_stages accepts. Every input is checked and converted (logits and target
probabilities to float64, class indices to int64) before any maths, and whatever cannot be used
gets a sentence that says why. PyTorch's own checks are in cross_entropy_loss_symint and
nll_loss_forward (aten/src/ATen/native/LossNLL.cpp); F.cross_entropy still runs afterwards, as
the cross-check, and anything these checks miss becomes an InputError there.
"""

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from app.engine.errors import InputError
from app.engine.stages import REDUCTIONS, class_dim
from app.engine.text import dtype_text, first_true, position_text, shape_text


@dataclass(slots=True)
class Inputs:
    z: Tensor  # the logits: float64, contiguous, detached
    t: Tensor  # logits-shaped float64 probabilities, or batch-shaped int64 class indices
    w: Tensor | None  # (C) float64 class weights
    probabilities: bool  # whether t holds probabilities (PyTorch: same shape as the logits)
    all_counted: bool  # class indices: none equals ignore_index (True for probabilities)


def checked_inputs(
    logits: Any, target: Any, weight: Any, ignore_index: Any, reduction: Any, smoothing: Any
) -> Inputs:
    """The inputs, checked and converted, or an InputError for the first thing wrong."""
    check_options(ignore_index, reduction, smoothing)
    if not isinstance(target, Tensor):
        raise InputError("target must be a tensor.", code="not_a_tensor", name="target")
    z = as_logits(logits)
    C = z.shape[class_dim(z)]
    t = target.detach() if target.requires_grad else target
    if t.device != z.device:
        t = t.to(z.device)
    probabilities = t.shape == z.shape  # cross_entropy_loss_symint reads these as probabilities
    if probabilities:
        t, all_counted = as_probabilities(t, z, ignore_index), True
    else:
        t, all_counted = as_class_indices(t, z, ignore_index)
    w = None if weight is None else as_weight(weight, C, z.device)
    return Inputs(z, t, w, probabilities, all_counted)


def check_options(ignore_index: Any, reduction: Any, label_smoothing: Any) -> None:
    if reduction not in REDUCTIONS:
        raise InputError(
            f"reduction must be 'mean', 'sum' or 'none', not {reduction!r}.",
            code="bad_reduction",
            value=repr(reduction)[:40],
        )
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise InputError(
            f"ignore_index must be an integer, not {ignore_index!r}.",
            code="ignore_index_not_integer",
            value=repr(ignore_index)[:40],
        )
    if not -(2**63) <= ignore_index < 2**63:
        raise InputError(
            f"ignore_index {ignore_index} does not fit in a 64-bit integer.",
            code="ignore_index_too_large",
            value=str(ignore_index)[:40],
        )
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, int | float):
        raise InputError(
            f"label_smoothing must be a number, not {label_smoothing!r}.",
            code="label_smoothing_not_number",
            value=repr(label_smoothing)[:40],
        )
    # PyTorch rejects > 1 but silently treats negative or NaN smoothing as 0; we reject both.
    if not 0.0 <= label_smoothing <= 1.0:
        raise InputError(
            f"label_smoothing must be between 0 and 1, not {label_smoothing}.",
            code="label_smoothing_range",
            value=label_smoothing,
        )


def real_tensor(value: Any, name: str) -> None:
    """Refuse what is not a tensor of real numbers (bool and complex are not)."""
    if not isinstance(value, Tensor):
        raise InputError(f"{name} must be a tensor.", code="not_a_tensor", name=name)
    if value.dtype == torch.bool or value.is_complex():
        raise InputError(
            f"{name} must be real numbers, not {dtype_text(value)}.",
            code="not_real",
            name=name,
            dtype=dtype_text(value),
        )


def index_shape(z: Tensor) -> torch.Size:
    """The shape class indices take for logits z: z's without its class dimension."""
    cd = class_dim(z)
    return z.shape[:cd] + z.shape[cd + 1 :]


def as_logits(logits: Any) -> Tensor:
    real_tensor(logits, "logits")
    if logits.dim() == 0:
        raise InputError(
            "logits need at least one dimension, the classes: shape (C), (N, C) or "
            "(N, C, d1, ..., dK); got a single number.",
            code="logits_scalar",
        )
    cd = class_dim(logits)
    if logits.shape[cd] == 0:
        raise InputError(
            f"logits of shape {shape_text(logits.shape)} have no classes "
            f"(dimension {cd} is empty).",
            code="logits_no_classes",
            shape=shape_text(logits.shape),
            dim=cd,
        )
    z = logits.detach() if logits.requires_grad else logits
    return (z if z.dtype == torch.float64 else z.to(torch.float64)).contiguous()


def as_probabilities(t: Tensor, z: Tensor, ignore_index: int) -> Tensor:
    """A logits-shaped target, as cross_entropy_loss_symint takes it: float, finite, >= 0."""
    if not t.is_floating_point():
        batch_shape = index_shape(z)
        raise InputError(
            f"target has the same shape as logits, {shape_text(z.shape)}, so it is read as class "
            f"probabilities, which must be floating-point numbers, not {dtype_text(t)}: write "
            f"them with a decimal point (1.0), or give class indices of shape "
            f"{shape_text(batch_shape)}.",
            code="probabilities_not_float",
            shape=shape_text(z.shape),
            dtype=dtype_text(t),
            index_shape=shape_text(batch_shape),
        )
    t = (t if t.dtype == torch.float64 else t.to(torch.float64)).contiguous()
    if t.numel():
        check_probability_values(t)
    if ignore_index >= 0:  # cross_entropy_loss_symint: TORCH_CHECK(ignore_index < 0, ...)
        raise InputError(
            f"ignore_index {ignore_index} cannot be used with class-probability targets: "
            "PyTorch accepts only a negative ignore_index there (and ignores it).",
            code="ignore_index_with_probabilities",
            value=ignore_index,
        )
    return t


def check_probability_values(t: Tensor) -> None:
    """Probabilities must be finite and >= 0 (they need not sum to 1: the notes warn)."""
    lo, hi = (float(x) for x in torch.aminmax(t))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        first = first_true(~torch.isfinite(t))
        raise InputError(
            f"target probabilities must be finite; found {float(t[first])} at "
            f"{position_text(first)}.",
            code="probability_not_finite",
            value=str(float(t[first])),
            position=position_text(first),
        )
    if lo < 0:
        first = first_true(t < 0)
        raise InputError(
            f"target probabilities cannot be negative; found {float(t[first]):.6g} at "
            f"{position_text(first)}.",
            code="probability_negative",
            value=f"{float(t[first]):.6g}",
            position=position_text(first),
        )


def as_class_indices(t: Tensor, z: Tensor, ignore_index: int) -> tuple[Tensor, bool]:
    """A batch-shaped target of class indices, as nll_loss_out_frame takes it: integers in
    [0, C), or ignore_index. Also whether none of them equals ignore_index."""
    cd = class_dim(z)
    C = z.shape[cd]
    batch_shape = index_shape(z)
    if t.shape != batch_shape:
        raise InputError(
            f"target of shape {shape_text(t.shape)} fits neither class indices (shape "
            f"{shape_text(batch_shape)}) nor class probabilities (shape {shape_text(z.shape)}) "
            f"for logits of shape {shape_text(z.shape)}.",
            code="target_shape",
            shape=shape_text(t.shape),
            index_shape=shape_text(batch_shape),
            logits_shape=shape_text(z.shape),
        )
    if t.dtype == torch.bool or t.is_complex() or t.is_floating_point():
        if t.dim() == 0:
            raise InputError(
                f"target {t.item()!r} is a class index, which must be an integer, not "
                f"{dtype_text(t)}; for class probabilities give shape {shape_text(z.shape)}.",
                code="target_not_integer",
                dtype=dtype_text(t),
                logits_shape=shape_text(z.shape),
            )
        example = "" if t.numel() == 0 else f" (such as {t.reshape(-1)[0].item()!r})"
        raise InputError(
            f"target of shape {shape_text(t.shape)} holds class indices, which must be integers, "
            f"not {dtype_text(t)}{example}; for class probabilities give shape "
            f"{shape_text(z.shape)}.",
            code="target_not_integer",
            dtype=dtype_text(t),
            logits_shape=shape_text(z.shape),
        )
    t = (t if t.dtype == torch.int64 else t.to(torch.int64)).contiguous()
    if t.numel() == 0:
        return t, True  # an empty batch: nothing to check, nothing ignored
    lo, hi = int_range(t)
    # the cheap test first; a value outside [0, C) may still be ignore_index
    bad = ((t < 0) | (t >= C)) & (t != ignore_index) if lo < 0 or hi >= C else None
    if bad is not None and bad.any():
        first = first_true(bad)
        more = int(bad.sum()) - 1
        raise InputError(
            f"target {int(t[first])}"
            + (f" at {position_text(first)}" if t.dim() else "")
            + f" is out of range for {C} classes (indices run from 0 to {C - 1}"
            + f"; ignore_index is {ignore_index})"
            + (f", and {more} more target{'s are' if more > 1 else ' is'} too" if more else "")
            + ".",
            code="target_out_of_range",
            value=int(t[first]),
            classes=C,
            ignore_index=ignore_index,
            more=more,
        )
    return t, not lo <= ignore_index <= hi


# Up to this many values (in one dimension), Python's min and max of t.tolist() find the range
# faster than torch.aminmax and two .item() calls: 0.7 us against 2.1 us for 8 values, about
# the same for 48 (timeit on int64 tensors, one torch thread, the development machine)
LISTED_VALUES = 32


def int_range(t: Tensor) -> tuple[int, int]:
    """The smallest and the largest value of a non-empty int64 tensor."""
    if t.dim() == 1 and t.numel() <= LISTED_VALUES:
        values = t.tolist()
        return min(values), max(values)
    lo, hi = torch.aminmax(t)
    return int(lo), int(hi)


def as_weight(weight: Any, C: int, device: torch.device) -> Tensor:
    real_tensor(weight, "weight")
    if weight.dim() != 1 or weight.numel() != C:
        raise InputError(
            f"weight must be a list of {C} numbers, one per class; got shape "
            f"{shape_text(weight.shape)}.",
            code="weight_shape",
            classes=C,
            shape=shape_text(weight.shape),
        )
    w = weight.detach().to(device=device, dtype=torch.float64).contiguous()
    bad = ~torch.isfinite(w)
    if bad.any():
        first = first_true(bad)
        raise InputError(
            f"weight must be finite; found {float(w[first])} at {position_text(first)}.",
            code="weight_not_finite",
            value=str(float(w[first])),
            position=position_text(first),
        )
    return w
