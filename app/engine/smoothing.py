"""Class-index targets with label smoothing eps > 0, as PyTorch's
cross_entropy_loss_label_smoothing (aten/src/ATen/native/LossNLL.cpp) computes them:

    loss = (1 - eps) * nll + eps / C * smooth

where nll is the loss without smoothing (index.py) and smooth_i = -sum_c w_c log_probs[i, c],
the loss against the uniform distribution, 0 where the target is ignored. Both terms share
nll's 'mean' divisor. Per position this is -sum_c w_c q_c log_probs_c with the smoothed target
q = (1 - eps) * one_hot + eps / C.
"""

import math

from torch import Tensor

from app.engine.gradient import scale_for, smoothed_grad, when_mean_divides_by_zero
from app.engine.index import Picked, pick, reduce_nll
from app.engine.stages import Reduction, Softmax, TargetStages, per_class, wants


def smoothed_targets(
    sm: Softmax,
    t: Tensor,
    w: Tensor | None,
    ignore_index: int,
    reduction: Reduction,
    eps: float,
    cd: int,
    wanted: frozenset[str],
) -> TargetStages:
    """The stages with label smoothing; the gradient, one_hot and target_dist only if `wanted`
    names them."""
    log_probs = sm.log_probs
    C = log_probs.shape[cd]
    p = pick(log_probs, t, w, ignore_index, cd, wants(wanted, "one_hot", "target_dist"))
    # smooth: the loss against the uniform distribution, -sum_c w_c log_probs_c
    w_log_probs = log_probs if w is None else log_probs * per_class(w, log_probs, cd)
    smooth = w_log_probs.sum(dim=cd).neg_().masked_fill_(~p.counted, 0.0)  # (batch)
    per_element = (1 - eps) * p.nll + (eps / C) * smooth
    if reduction == "none":
        loss = per_element
    else:
        loss = reduce_smoothed(p, smooth, t, w, reduction, eps, C)

    divides_by_zero = reduction == "mean" and not p.denominator
    q = None  # (logits) (1 - eps) * one_hot + eps / C where counted
    if p.one_hot is not None and "target_dist" in wanted:
        q = p.one_hot * (1 - eps) + p.counted_f.unsqueeze(cd) * (eps / C)
    return TargetStages(
        one_hot=p.one_hot,
        target_dist=q,
        per_element_loss=per_element,
        loss=loss,
        grad=smoothed_path_grad(sm, p, w, reduction, eps, divides_by_zero, cd)
        if "grad" in wanted
        else None,
        denominator=p.denominator,
        divides_by_zero=divides_by_zero,
        all_ignored=not p.counted.any(),
    )


def smoothed_path_grad(
    sm: Softmax,
    p: Picked,
    w: Tensor | None,
    reduction: Reduction,
    eps: float,
    divides_by_zero: bool,
    cd: int,
) -> Tensor:
    """The gradient of smoothed_targets' loss."""
    scale = scale_for(p.denominator, reduction)
    softmax = sm.softmax_for_grad()
    grad = smoothed_grad(softmax, p.counted_f, p.idx, p.w_t, w, eps, scale, cd)
    if divides_by_zero:  # every counted row is NaN in autograd (when_mean_divides_by_zero)
        grad = when_mean_divides_by_zero(grad.fill_(math.nan), softmax, p.counted, cd)
    return grad


def reduce_smoothed(
    p: Picked,
    smooth: Tensor,
    t: Tensor,
    w: Tensor | None,
    reduction: Reduction,
    eps: float,
    C: int,
) -> Tensor:
    """'mean' or 'sum', term by term, as cross_entropy_loss_label_smoothing reduces them: nll
    as nll_loss does (its sum and divisor added in its cascade: index.reduce_nll), smooth with
    torch.sum, over the weights of the counted targets alone for 'mean'. The same number as
    reducing the per-position losses, to rounding, and the same NaN or inf when 'mean' divides
    by 0."""
    nll = reduce_nll(p.nll, p.denominator, reduction, p.counted)
    smooth_sum = smooth.sum()
    if reduction == "mean":
        # PyTorch sums the counted targets' weights again here, with torch.sum; their number
        # without weights (an integer, exact either way)
        smooth_sum = smooth_sum / (p.denominator if w is None else w[t[p.counted]].sum())
    return (1 - eps) * nll + (eps / C) * smooth_sum
