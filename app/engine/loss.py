"""nn.CrossEntropyLoss taken apart: every stage from logits to loss and gradient, in float64."""

import math
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor

from app.engine.errors import InputError

# The semantics mirror PyTorch's aten/src/ATen/native/LossNLL.cpp:
#   cross_entropy_loss_symint           which path a call takes, and what it rejects
#   nll_loss_out_frame                  index targets: ignore_index, weights, the 'mean' divisor
#   cross_entropy_loss_label_smoothing  index targets with label_smoothing > 0
#   cross_entropy_loss_prob_target      class-probability targets


Reduction = Literal["mean", "sum", "none"]
REDUCTIONS: tuple[str, ...] = get_args(Reduction)
PROBABILITY_TOLERANCE = 1e-6  # how far from 1 a target distribution may sum before a warning


@dataclass
class Stages:
    """Every intermediate of the loss. Shapes: logits (C), (N, C) or (N, C, d1..dK); the batch
    shape is the logits shape without the class dim: (), (N) or (N, d1..dK)."""

    logits: Tensor  # logits-shaped
    max_logit: Tensor  # batch-shaped: the shift that keeps exp() from overflowing
    shifted: Tensor  # logits - max_logit, every entry <= 0
    exp: Tensor  # exp(shifted), in (0, 1]
    sum_exp: Tensor  # batch-shaped, >= 1
    log_sum_exp: Tensor  # batch-shaped: max_logit + log(sum_exp)
    softmax: Tensor  # exp / sum_exp
    log_probs: Tensor  # shifted - log(sum_exp), i.e. log_softmax
    one_hot: Tensor | None  # index targets: 1.0 at the target class, rows of 0 where ignored
    target_dist: Tensor  # q, the distribution actually used (after label smoothing)
    per_element_loss: Tensor  # batch-shaped: -sum_c w_c q_c log_probs_c, 0 where ignored
    loss: Tensor  # 0-d for 'mean' and 'sum', batch-shaped for 'none'
    grad: Tensor  # d loss / d logits, logits-shaped (of the sum, for 'none')
    predicted: Tensor  # batch-shaped int64 argmax
    denominator: Tensor  # 0-d: what 'mean' divides by
    torch_loss: Tensor  # F.cross_entropy on the same input, as a cross-check
    warnings: list[str]


STAGES: tuple[str, ...] = tuple(f.name for f in fields(Stages))


def cross_entropy_stages(
    logits: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
    label_smoothing: float = 0.0,
) -> Stages:
    """Compute F.cross_entropy(logits, target, ...) stage by stage, plus its gradient.

    Every input that requires grad is detached first, so no stage requires grad and autograd
    records nothing (without the cost of entering torch.no_grad() on every call)."""
    _check_options(ignore_index, reduction, label_smoothing)
    if not isinstance(target, Tensor):
        raise InputError("target must be a tensor.")
    z = _as_logits(logits)
    cd = 0 if z.dim() == 1 else 1  # the class dim, as in PyTorch
    C = z.shape[cd]
    batch_shape = z.shape[:cd] + z.shape[cd + 1 :]
    probabilities = target.shape == z.shape  # PyTorch reads same-shape targets as probabilities
    t, all_valid = _as_target(target, z, batch_shape, ignore_index, probabilities)
    w = None if weight is None else _as_weight(weight, C, z.device)
    eps = float(label_smoothing)

    # PyTorch's own answer first: it is the cross-check, and it fails fast on anything we missed.
    try:
        torch_loss = F.cross_entropy(
            z, t, w, ignore_index=ignore_index, reduction=reduction, label_smoothing=eps
        )
    except (RuntimeError, ValueError, IndexError) as e:
        raise InputError(f"PyTorch rejected this input: {e}") from e

    # softmax and log_softmax, shifted by the max so that exp() cannot overflow
    max_logit, predicted = z.max(dim=cd)  # batch-shaped; the argmax is the prediction
    shifted = z - max_logit.unsqueeze(cd)
    exp = shifted.exp()
    sum_exp = exp.sum(dim=cd)
    log_sum_exp_shifted = sum_exp.log()
    log_sum_exp = max_logit + log_sum_exp_shifted
    softmax = exp / sum_exp.unsqueeze(cd)
    log_probs = shifted - log_sum_exp_shifted.unsqueeze(cd)  # as PyTorch's log_softmax kernel

    # w_c as a tensor that broadcasts against the logits: (C) -> (C, 1, ..., 1)
    w_b = None if w is None else w.view(C, *([1] * (z.dim() - cd - 1)))

    one_hot: Tensor | None
    if not probabilities and all_valid and eps == 0:
        # class indices, none equal to ignore_index, no smoothing: the general case below with
        # every position counted, without its masks (the same numbers, in fewer steps)
        one_hot, per_element, loss, grad, denominator = _every_position_counts(
            log_probs, softmax, t, w, reduction, cd
        )
        target_dist, valid = one_hot, None
        any_valid: bool | None = t.numel() > 0
        # whether 'mean' divides by 0; without weights, it divides by the number of positions
        divides_by_zero = reduction == "mean" and (not t.numel() if w is None else not denominator)
    else:
        if not probabilities:
            # class indices; positions equal to ignore_index take no part
            valid = t != ignore_index  # batch-shaped bool
            idx = t.masked_fill(~valid, 0).unsqueeze(cd)  # ignored rows: class 0, weight 0
            valid_f = valid.to(z.dtype)
            one_hot = torch.zeros_like(z).scatter_(cd, idx, valid_f.unsqueeze(cd))
            # w_t: the weight of each position's target class, 0 where ignored
            w_t = valid_f if w is None else w[idx.squeeze(cd)] * valid_f
            # nll_loss_out_frame: -w_t * log_probs[t], 0 where ignored; 'mean' divides by
            # sum(w_t)
            nll = (-log_probs.gather(cd, idx).squeeze(cd) * w_t).masked_fill_(~valid, 0.0)
            denominator = w_t.sum()
            if eps > 0:
                # cross_entropy_loss_label_smoothing: (1-eps)*nll + eps/C * smooth, where
                # smooth = -sum_c w_c log_probs_c is the loss against the uniform distribution.
                # Both share the nll divisor, so per position this is -sum_c w_c q_c log_probs_c
                # with q = (1-eps)*one_hot + eps/C.
                wlp = log_probs.sum(dim=cd) if w is None else log_probs.movedim(cd, -1) @ w
                smooth = (-wlp).masked_fill_(~valid, 0.0)
                per_element = (1 - eps) * nll + (eps / C) * smooth
                target_dist = one_hot * (1 - eps) + valid_f.unsqueeze(cd) * (eps / C)
            else:
                per_element = nll
                target_dist = one_hot
        else:
            # cross_entropy_loss_prob_target: smoothing mixes in the uniform distribution, there
            # is no ignore_index, and 'mean' divides by the number of positions, whatever the
            # weights.
            valid = None
            one_hot = None
            target_sums = t.sum(dim=cd)  # batch-shaped; 1 for a distribution (warned about if not)
            target_dist = t if eps == 0 else t * (1 - eps) + eps / C
            wq = target_dist if w_b is None else target_dist * w_b  # w_c q_c
            per_element = -(log_probs * wq).sum(dim=cd)
            denominator = torch.tensor(z.numel() // C, dtype=z.dtype, device=z.device)

        if reduction == "none":
            loss = per_element
        elif probabilities or eps == 0:
            loss = per_element.sum() / denominator if reduction == "mean" else per_element.sum()
        else:
            # reduced term by term, as cross_entropy_loss_label_smoothing does (the same number,
            # but the same NaN when 'mean' divides by 0)
            nll_sum, smooth_sum = nll.sum(), smooth.sum()
            if reduction == "mean":
                nll_sum, smooth_sum = nll_sum / denominator, smooth_sum / denominator
            loss = (1 - eps) * nll_sum + (eps / C) * smooth_sum

        divides_by_zero = reduction == "mean" and (
            not z.numel() if probabilities else not denominator
        )

        # The gradient in closed form: for each position,
        #   d/dz_j (-sum_c w_c q_c log_softmax(z)_c) = softmax_j * sum_c w_c q_c - w_j q_j
        # (softmax - one_hot with no weight or smoothing), times 1/denominator for 'mean'.
        scale = 1 / denominator if reduction == "mean" else torch.ones_like(denominator)
        if not probabilities:
            # sum_c w_c q_c = (1-eps) w_t + eps/C sum_c w_c, and w_j q_j is (1-eps) w_t at the
            # target (a scatter, not a logits-sized subtraction) plus eps/C w_j where not ignored.
            w_sum = C if w is None else float(w.sum())
            s = w_t if eps == 0 else (1 - eps) * w_t + (eps / C) * w_sum * valid_f
            grad = softmax * (s * scale).unsqueeze(cd)
            grad.scatter_add_(cd, idx, (-(1 - eps) * w_t * scale).unsqueeze(cd))
            if eps > 0:
                smoothing = valid_f.unsqueeze(cd) * (eps / C * float(scale))
                if w_b is None:
                    grad.sub_(smoothing)
                else:
                    grad.addcmul_(smoothing, w_b, value=-1)
            if divides_by_zero and valid is not None:
                # PyTorch never touches ignored rows, so they stay 0 even when it divides by 0
                grad.masked_fill_(~valid.unsqueeze(cd), 0.0)
        else:
            # sum_c w_c q_c, batch-shaped; without weights, sum_c q_c = (1-eps) sum_c t_c + eps
            s = (1 - eps) * target_sums + eps if w is None else wq.sum(dim=cd)
            grad = softmax * (s * scale).unsqueeze(cd)
            grad.sub_(wq, alpha=float(scale))
        any_valid = None if valid is None else bool(valid.any())

    stages = Stages(
        logits=z,
        max_logit=max_logit,
        shifted=shifted,
        exp=exp,
        sum_exp=sum_exp,
        log_sum_exp=log_sum_exp,
        softmax=softmax,
        log_probs=log_probs,
        one_hot=one_hot,
        target_dist=target_dist,
        per_element_loss=per_element,
        loss=loss,
        grad=grad,
        predicted=predicted,
        denominator=denominator,
        torch_loss=torch_loss,
        warnings=[],
    )
    sums = target_sums if probabilities else None
    stages.warnings = _warnings(stages, any_valid, divides_by_zero, sums, ignore_index)
    return stages


def _every_position_counts(
    log_probs: Tensor, softmax: Tensor, t: Tensor, w: Tensor | None, reduction: str, cd: int
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """one_hot, per_element, loss, grad and denominator for class indices none of which is
    ignored, without label smoothing: what the general path computes with every mask True."""
    idx = t.unsqueeze(cd)
    one_hot = torch.zeros_like(log_probs).scatter_(cd, idx, 1.0)
    picked = log_probs.gather(cd, idx).squeeze(cd)  # log_probs at the targets
    n = t.numel()
    if w is None:
        per_element = picked.neg_()
        denominator = torch.scalar_tensor(n, dtype=log_probs.dtype, device=t.device)
    else:
        w_t = w[t]
        per_element = picked.neg_().mul_(w_t)
        denominator = w_t.sum()
    if reduction == "none":
        loss = per_element
    else:
        loss = per_element.sum()
        if reduction == "mean":
            loss = loss.div_(denominator)
    # softmax * w_t * scale, less w_t * scale at the target (scale: 1/denominator for 'mean')
    if w is None:
        if reduction == "mean":
            # 1/n in Python is the float64 that denominator.reciprocal() gives (inf for n = 0);
            # one_hot * scale is exactly 0 or scale: softmax * scale, less scale at the target
            scale = 1 / n if n else math.inf
            grad = (softmax * scale).sub_(one_hot, alpha=scale)
        else:
            grad = softmax - one_hot
    else:
        ws = w_t * denominator.reciprocal() if reduction == "mean" else w_t
        grad = softmax * ws.unsqueeze(cd)
        grad.scatter_add_(cd, idx, ws.neg().unsqueeze(cd))
    return one_hot, per_element, loss, grad, denominator


def _warnings(
    st: Stages,
    any_valid: bool | None,
    divides_by_zero: bool,
    target_sums: Tensor | None,
    ignore_index: int,
) -> list[str]:
    """Sentences for everything surprising about this input: why a NaN or inf appears, and
    options that do nothing. any_valid: whether any position counts, for index targets (None
    for probabilities); divides_by_zero: whether 'mean' divides by 0; target_sums: the sums of
    probability targets over the classes."""
    out: list[str] = []
    z = st.logits

    if target_sums is not None:
        if ignore_index != -100:
            out.append(
                f"ignore_index ({ignore_index}) has no effect with class-probability targets: "
                "every position counts."
            )
        off = (target_sums - 1).abs() > PROBABILITY_TOLERANCE
        if off.any():
            first = _first(off)
            out.append(
                f"The target probabilities at {int(off.sum())} of {off.numel()} positions do not "
                f"sum to 1 (at {_pos(first)} they sum to {float(target_sums[first]):.6g}); "
                "PyTorch uses them as given."
            )

    explained = False  # whether a sentence already says why something is NaN or infinite
    # log_probs are all finite only if the logits are and no row overflows (a NaN or +inf logit
    # makes its row NaN; a -inf one, or an overflow, gives -inf): one reduction rules out both
    # sentences below, and the exact test runs only when it fails
    if z.numel() and not math.isfinite(float(st.log_probs.min())):
        lo, hi = (float(x) for x in torch.aminmax(z))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            explained = True
            out.append(
                "The logits contain NaN or infinite values; PyTorch carries them through, so the "
                "stages that depend on them are NaN or infinite too."
            )
        elif math.isinf(hi - lo) and bool(torch.isinf(st.shifted).any()):
            explained = True
            out.append(
                "Some logits are so far below their row's maximum (more than about 1.8e308) "
                "that subtracting the maximum overflows to -inf: those classes get probability "
                "0 and log-probability -inf, and any target mass on them makes the loss "
                "infinite, or NaN where 0 is multiplied by -inf."
            )

    if divides_by_zero:
        explained = True
        if z.numel() == 0:
            why, grad = "the batch is empty", ""
        elif any_valid is False:
            why, grad = f"every target equals ignore_index ({ignore_index})", ""
        else:
            why = "the weights of the non-ignored targets sum to 0"
            grad = " The gradient at the counted positions is not finite either."
        out.append(
            f"'mean' divides by 0 because {why}, so the loss is {_num(st.loss)}, "
            f"as in PyTorch.{grad}"
        )
    elif any_valid is False and z.numel():
        out.append(f"Every target equals ignore_index ({ignore_index}), so the loss is 0.")

    if explained:
        return out
    if st.loss.dim() == 0:
        where = "" if math.isfinite(float(st.loss)) else f"is {_num(st.loss)}"
    else:
        finite = torch.isfinite(st.loss)
        where = "" if bool(finite.all()) else f"is not finite at {int((~finite).sum())} positions"
    if where:
        out.append(f"The loss {where}: it overflows float64 (the weights or logits are too large).")
    return out


def _check_options(ignore_index: Any, reduction: Any, label_smoothing: Any) -> None:
    if reduction not in REDUCTIONS:
        raise InputError(f"reduction must be 'mean', 'sum' or 'none', not {reduction!r}.")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise InputError(f"ignore_index must be an integer, not {ignore_index!r}.")
    if not -(2**63) <= ignore_index < 2**63:
        raise InputError(f"ignore_index {ignore_index} does not fit in a 64-bit integer.")
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, int | float):
        raise InputError(f"label_smoothing must be a number, not {label_smoothing!r}.")
    # PyTorch rejects > 1 but silently treats negative or NaN smoothing as 0; we reject both.
    if not 0.0 <= label_smoothing <= 1.0:
        raise InputError(f"label_smoothing must be between 0 and 1, not {label_smoothing}.")


def _as_logits(logits: Tensor) -> Tensor:
    if not isinstance(logits, Tensor):
        raise InputError("logits must be a tensor.")
    if logits.dtype == torch.bool or logits.is_complex():
        raise InputError(f"logits must be real numbers, not {_dtype(logits)}.")
    if logits.dim() == 0:
        raise InputError(
            "logits need at least one dimension, the classes: shape (C), (N, C) or "
            "(N, C, d1, ..., dK); got a single number."
        )
    cd = 0 if logits.dim() == 1 else 1
    if logits.shape[cd] == 0:
        raise InputError(
            f"logits of shape {_shape(logits.shape)} have no classes (dimension {cd} is empty)."
        )
    z = logits.detach() if logits.requires_grad else logits
    return (z if z.dtype == torch.float64 else z.to(torch.float64)).contiguous()


def _as_target(
    target: Tensor, z: Tensor, batch_shape: torch.Size, ignore_index: int, probabilities: bool
) -> tuple[Tensor, bool]:
    """The target as float64 probabilities or int64 class indices, checked; and, for indices,
    whether none of them equals ignore_index (True for probabilities, which have no such thing).
    """
    cd = 0 if z.dim() == 1 else 1
    C = z.shape[cd]
    t = target.detach() if target.requires_grad else target
    if t.device != z.device:
        t = t.to(z.device)
    if probabilities:
        if not t.is_floating_point():
            raise InputError(
                f"target has the same shape as logits, {_shape(z.shape)}, so it is read as class "
                f"probabilities, which must be floating-point numbers, not {_dtype(t)}: write "
                f"them with a decimal point (1.0), or give class indices of shape "
                f"{_shape(batch_shape)}."
            )
        t = (t if t.dtype == torch.float64 else t.to(torch.float64)).contiguous()
        lo, hi = (float(x) for x in torch.aminmax(t)) if t.numel() else (0.0, 0.0)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            first = _first(~torch.isfinite(t))
            raise InputError(
                f"target probabilities must be finite; found {float(t[first])} at {_pos(first)}."
            )
        if lo < 0:
            first = _first(t < 0)
            raise InputError(
                f"target probabilities cannot be negative; found {float(t[first]):.6g} at "
                f"{_pos(first)}."
            )
        if ignore_index >= 0:  # cross_entropy_loss_symint: TORCH_CHECK(ignore_index < 0, ...)
            raise InputError(
                f"ignore_index {ignore_index} cannot be used with class-probability targets: "
                "PyTorch accepts only a negative ignore_index there (and ignores it)."
            )
        return t, True

    if t.shape != batch_shape:
        raise InputError(
            f"target of shape {_shape(t.shape)} fits neither class indices (shape "
            f"{_shape(batch_shape)}) nor class probabilities (shape {_shape(z.shape)}) "
            f"for logits of shape {_shape(z.shape)}."
        )
    if t.dtype == torch.bool or t.is_complex() or t.is_floating_point():
        if t.dim() == 0:
            raise InputError(
                f"target {t.item()!r} is a class index, which must be an integer, not "
                f"{_dtype(t)}; for class probabilities give shape {_shape(z.shape)}."
            )
        example = "" if t.numel() == 0 else f" (such as {t.reshape(-1)[0].item()!r})"
        raise InputError(
            f"target of shape {_shape(t.shape)} holds class indices, which must be integers, "
            f"not {_dtype(t)}{example}; for class probabilities give shape {_shape(z.shape)}."
        )
    t = (t if t.dtype == torch.int64 else t.to(torch.int64)).contiguous()
    lo, hi = map(int, torch.aminmax(t)) if t.numel() else (0, 0)
    # the cheap test first; a value outside [0, C) may still be ignore_index
    bad = ((t < 0) | (t >= C)) & (t != ignore_index) if lo < 0 or hi >= C else None
    if bad is not None and bad.any():
        first = _first(bad)
        more = int(bad.sum()) - 1
        raise InputError(
            f"target {int(t[first])}"
            + (f" at {_pos(first)}" if t.dim() else "")
            + f" is out of range for {C} classes (indices run from 0 to {C - 1}"
            + f"; ignore_index is {ignore_index})"
            + (f", and {more} more target{'s are' if more > 1 else ' is'} too" if more else "")
            + "."
        )
    return t, not lo <= ignore_index <= hi


def _as_weight(weight: Tensor, C: int, device: torch.device) -> Tensor:
    if not isinstance(weight, Tensor):
        raise InputError("weight must be a tensor.")
    if weight.dtype == torch.bool or weight.is_complex():
        raise InputError(f"weight must be real numbers, not {_dtype(weight)}.")
    if weight.dim() != 1 or weight.numel() != C:
        raise InputError(
            f"weight must be a list of {C} numbers, one per class; got shape "
            f"{_shape(weight.shape)}."
        )
    w = weight.detach().to(device=device, dtype=torch.float64).contiguous()
    bad = ~torch.isfinite(w)
    if bad.any():
        first = _first(bad)
        raise InputError(f"weight must be finite; found {float(w[first])} at {_pos(first)}.")
    return w


# small helpers for messages


def _first(mask: Tensor) -> tuple[int, ...]:
    """The index of the first True in a bool tensor, as a tuple usable for indexing."""
    return tuple(int(i) for i in torch.nonzero(mask)[0])


def _pos(index: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, index)) + "]"


def _shape(shape: torch.Size | tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"


def _dtype(t: Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def _num(t: Tensor) -> str:
    x = float(t)
    return "NaN" if math.isnan(x) else f"{x:+g}" if math.isinf(x) else f"{x:g}"
