"""The warnings: a sentence for everything surprising about an input, such as why a NaN or inf
appears, or an option that does nothing; each with a stable code and the values in its sentence,
so that a client can say it in its own language."""

import math
from typing import Any, NamedTuple

import torch
from torch import Tensor

from app.engine.stages import Softmax, TargetStages
from app.engine.text import first_true, non_finite_text, position_text

PROBABILITY_TOLERANCE = 1e-6  # how far from 1 a target distribution may sum before a warning


class Note(NamedTuple):
    """One warning: the sentence, its snake_case code and the values in the sentence."""

    text: str
    code: str
    params: dict[str, Any]


def notes(z: Tensor, sm: Softmax, path: TargetStages, ignore_index: int) -> list[Note]:
    assert sm.finite is not None, "softmax_stages checks log_probs for the warnings"
    out = [] if path.target_sums is None else probability_notes(path.target_sums, ignore_index)
    # why a stage is NaN or infinite, if one is
    if not sm.finite:
        out.append(non_finite_logits_note(z))
    if path.divides_by_zero:
        out.append(divides_by_zero_note(z, path.loss, path.all_ignored, ignore_index))
    elif path.all_ignored and z.numel():
        text = f"Every target equals ignore_index ({ignore_index}), so the loss is 0."
        out.append(Note(text, "all_ignored", {"ignore_index": ignore_index}))
    if not sm.finite or path.divides_by_zero:
        return out
    overflow = loss_overflow_note(path.loss)
    return [*out, overflow] if overflow else out


def probability_notes(target_sums: Tensor, ignore_index: int) -> list[Note]:
    """Probability targets: an ignore_index that does nothing; distributions that do not sum to
    1. target_sums (batch) is each position's sum over the classes."""
    out: list[Note] = []
    if ignore_index != -100:
        text = (
            f"ignore_index ({ignore_index}) has no effect with class-probability targets: "
            "every position counts."
        )
        out.append(Note(text, "ignore_index_unused", {"ignore_index": ignore_index}))
    off = (target_sums - 1).abs() > PROBABILITY_TOLERANCE
    if off.any() and target_sums.dim() == 0:  # one position: logits of shape (C)
        total = f"{float(target_sums):.6g}"
        text = f"The target probabilities sum to {total}, not 1; PyTorch uses them as given."
        out.append(Note(text, "probabilities_sum", {"sum": total}))
    elif off.any():
        first = first_true(off)
        total, where = f"{float(target_sums[first]):.6g}", position_text(first)
        count, positions = int(off.sum()), off.numel()
        text = (
            f"The target probabilities at {count} of {positions} positions do not "
            f"sum to 1 (at {where} they sum to {total}); PyTorch uses them as given."
        )
        params = {"count": count, "positions": positions, "position": where, "sum": total}
        out.append(Note(text, "probabilities_sum_rows", params))
    return out


def non_finite_logits_note(z: Tensor) -> Note:
    """Why some log-probability is NaN or -inf: a NaN or infinite logit, or else (finite logits)
    a row whose logits are so far apart that subtracting its max overflows."""
    lo, hi = (float(x) for x in torch.aminmax(z))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        text = (
            "The logits contain NaN or infinite values; PyTorch carries them through, so the "
            "stages that depend on them are NaN or infinite too."
        )
        return Note(text, "logits_not_finite", {})
    text = (
        "Some logits are so far below their row's maximum (more than about 1.8e308) "
        "that subtracting the maximum overflows to -inf: those classes get probability "
        "0 and log-probability -inf, and any target mass on them makes the loss "
        "infinite, or NaN where 0 is multiplied by -inf."
    )
    return Note(text, "logits_spread_overflow", {})


def divides_by_zero_note(z: Tensor, loss: Tensor, all_ignored: bool, ignore_index: int) -> Note:
    params: dict[str, Any] = {"loss": non_finite_text(loss)}
    if z.numel() == 0:
        code, why, grad = "mean_of_empty_batch", "the batch is empty", ""
    elif all_ignored:
        code, grad = "mean_all_ignored", ""
        why = f"every target equals ignore_index ({ignore_index})"
        params["ignore_index"] = ignore_index
    else:
        code, why = "mean_zero_weight", "the weights of the non-ignored targets sum to 0"
        grad = " The gradient at the counted positions is not finite either."
    text = (
        f"'mean' divides by 0 because {why}, so the loss is {non_finite_text(loss)}, "
        f"as in PyTorch.{grad}"
    )
    return Note(text, code, params)


def loss_overflow_note(loss: Tensor) -> Note | None:
    """Finite logits and weights, and still a loss that is not finite."""
    if loss.dim() == 0:
        if math.isfinite(float(loss)):
            return None
        value = non_finite_text(loss)
        where, code = f"is {value}", "loss_overflow"
        params: dict[str, Any] = {"loss": value}
    else:
        finite = torch.isfinite(loss)
        if bool(finite.all()):
            return None
        count = int((~finite).sum())
        where, code = f"is not finite at {count} positions", "loss_overflow_rows"
        params = {"positions": count}
    text = f"The loss {where}: it overflows float64 (the weights or logits are too large)."
    return Note(text, code, params)
