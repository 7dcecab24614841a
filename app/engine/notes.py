"""The warnings: a sentence for everything surprising about an input, such as why a NaN or inf
appears, or an option that does nothing."""

import math

import torch
from torch import Tensor

from app.engine.stages import Softmax, TargetStages
from app.engine.text import first_true, non_finite_text, position_text

PROBABILITY_TOLERANCE = 1e-6  # how far from 1 a target distribution may sum before a warning


def notes(z: Tensor, sm: Softmax, path: TargetStages, ignore_index: int) -> list[str]:
    out = [] if path.target_sums is None else probability_notes(path.target_sums, ignore_index)
    # why a stage is NaN or infinite, if one is
    if not sm.finite:
        out.append(non_finite_logits_note(z))
    if path.divides_by_zero:
        out.append(divides_by_zero_note(z, path.loss, path.all_ignored, ignore_index))
    elif path.all_ignored and z.numel():
        out.append(f"Every target equals ignore_index ({ignore_index}), so the loss is 0.")
    if not sm.finite or path.divides_by_zero:
        return out
    overflow = loss_overflow_note(path.loss)
    return [*out, overflow] if overflow else out


def probability_notes(target_sums: Tensor, ignore_index: int) -> list[str]:
    """Probability targets: an ignore_index that does nothing; distributions that do not sum to
    1. target_sums (batch) is each position's sum over the classes."""
    out: list[str] = []
    if ignore_index != -100:
        out.append(
            f"ignore_index ({ignore_index}) has no effect with class-probability targets: "
            "every position counts."
        )
    off = (target_sums - 1).abs() > PROBABILITY_TOLERANCE
    if off.any() and target_sums.dim() == 0:  # one position: logits of shape (C)
        out.append(
            f"The target probabilities sum to {float(target_sums):.6g}, not 1; "
            "PyTorch uses them as given."
        )
    elif off.any():
        first = first_true(off)
        out.append(
            f"The target probabilities at {int(off.sum())} of {off.numel()} positions do not "
            f"sum to 1 (at {position_text(first)} they sum to "
            f"{float(target_sums[first]):.6g}); PyTorch uses them as given."
        )
    return out


def non_finite_logits_note(z: Tensor) -> str:
    """Why some log-probability is NaN or -inf: a NaN or infinite logit, or else (finite logits)
    a row whose logits are so far apart that subtracting its max overflows."""
    lo, hi = (float(x) for x in torch.aminmax(z))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return (
            "The logits contain NaN or infinite values; PyTorch carries them through, so the "
            "stages that depend on them are NaN or infinite too."
        )
    return (
        "Some logits are so far below their row's maximum (more than about 1.8e308) "
        "that subtracting the maximum overflows to -inf: those classes get probability "
        "0 and log-probability -inf, and any target mass on them makes the loss "
        "infinite, or NaN where 0 is multiplied by -inf."
    )


def divides_by_zero_note(z: Tensor, loss: Tensor, all_ignored: bool, ignore_index: int) -> str:
    if z.numel() == 0:
        why, grad = "the batch is empty", ""
    elif all_ignored:
        why, grad = f"every target equals ignore_index ({ignore_index})", ""
    else:
        why = "the weights of the non-ignored targets sum to 0"
        grad = " The gradient at the counted positions is not finite either."
    return (
        f"'mean' divides by 0 because {why}, so the loss is {non_finite_text(loss)}, "
        f"as in PyTorch.{grad}"
    )


def loss_overflow_note(loss: Tensor) -> str | None:
    """Finite logits and weights, and still a loss that is not finite."""
    if loss.dim() == 0:
        where = "" if math.isfinite(float(loss)) else f"is {non_finite_text(loss)}"
    else:
        finite = torch.isfinite(loss)
        where = "" if bool(finite.all()) else f"is not finite at {int((~finite).sum())} positions"
    if not where:
        return None
    return f"The loss {where}: it overflows float64 (the weights or logits are too large)."
