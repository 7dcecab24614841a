"""Class-probability targets (the target has the logits' shape), as PyTorch's
cross_entropy_loss_prob_target (aten/src/ATen/native/LossNLL.cpp) computes them:

    loss_i = -sum_c w_c q_ic log_probs_ic,    q = t, or (1 - eps) * t + eps / C with smoothing

There is no ignore_index, and 'mean' divides by the number of positions, whatever the weights.
"""

from torch import Tensor

from app.engine.gradient import probability_grad, scale_for
from app.engine.stages import Reduction, Softmax, TargetStages, per_class


def probability_targets(
    sm: Softmax,
    t: Tensor,
    w: Tensor | None,
    reduction: Reduction,
    eps: float,
    cd: int,
    wanted: frozenset[str],
) -> TargetStages:
    """The stages for probability targets; the gradient only if `wanted` names it."""
    log_probs = sm.log_probs
    C = log_probs.shape[cd]
    target_sums = t.sum(dim=cd)  # (batch): 1 for a distribution (the notes warn if not)
    q = t if eps == 0 else t * (1 - eps) + eps / C  # (logits)
    w_b = None if w is None else per_class(w, log_probs, cd)  # (C, 1, ..., 1)
    wq = q if w_b is None else q * w_b  # (logits) w_c q_c, for the gradient
    # PyTorch's order, (log_probs * q) * w: the same number, but it overflows (or gives 0 * inf)
    # where PyTorch does, not where w * q alone would
    lq = log_probs * q
    lqw = lq if w_b is None else lq * w_b  # (logits)
    per_element = -lqw.sum(dim=cd)
    positions = per_element.numel()
    denominator = per_element.new_tensor(positions)  # float64, on the logits' device
    scale = scale_for(denominator, reduction)
    return TargetStages(
        one_hot=None,
        target_dist=q,
        per_element_loss=per_element,
        loss=per_element if reduction == "none" else reduce_all(lqw, denominator, reduction),
        grad=probability_grad(sm.softmax_for_grad(), wq, target_sums, w is not None, eps, scale, cd)
        if "grad" in wanted
        else None,
        denominator=denominator,
        divides_by_zero=reduction == "mean" and positions == 0,
        target_sums=target_sums,
    )


def reduce_all(lqw: Tensor, denominator: Tensor, reduction: Reduction) -> Tensor:
    """'sum' and 'mean' as cross_entropy_loss_prob_target reduces: minus one sum over every
    entry of w_c q_c log_probs_c, not a sum of the per-position losses (the same number to
    rounding, not always bit for bit)."""
    total = -lqw.sum()
    return total if reduction == "sum" else total / denominator
