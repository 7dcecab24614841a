"""Class-index targets without label smoothing, as PyTorch's nll_loss_out_frame
(aten/src/ATen/native/LossNLL.cpp) computes them from log_softmax: for each position i with
target t_i,

    loss_i = -w[t_i] * log_probs[i, t_i]      (w = 1 without weights)
    loss_i = 0                                where t_i == ignore_index

and 'mean' divides the sum by the sum of w[t_i] over the counted positions (their number,
without weights), so it divides by 0 when every target is ignored. Both sums are added in
nll_loss_out_frame's order (nll_sum below).
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from app.engine.gradient import (
    every_position_grad,
    index_grad,
    scale_for,
    when_mean_divides_by_zero,
)
from app.engine.stages import Reduction, Softmax, TargetStages, wants


def nll_sum(values: Tensor, counted: Tensor | None = None) -> Tensor:
    """The sum of batch-shaped values over the counted positions (all without `counted`), added
    in the order nll_loss adds a batch's losses and weights: nll_loss_out_frame keeps partial
    sums in a cascade of blocks of 16 positions, which torch.sum does not (where PyTorch's
    kernels run AVX2, a third of random losses differed in the last bits with torch.sum; none
    this way: python -m bench.agreement, tests/engine/test_loss.py). The order is nll_loss's
    own: the values go to it as the log-probabilities of a single class, negated (nll_loss adds
    -input[b][0]), with ignore_index where not counted. Where the batch has extra dims,
    nll_loss takes the same path for them as for the logits."""
    target = torch.zeros_like(values, dtype=torch.int64)  # 1.5 us; torch.zeros(shape) 3.2
    if counted is not None:
        target.masked_fill_(~counted, -100)
    one_class = values.neg().unsqueeze(min(1, values.dim()))  # (N, 1, d1..dK), or (1) for ()
    return F.nll_loss(one_class, target, reduction="sum")


def reduce_nll(
    per_element: Tensor, denominator: Tensor, reduction: Reduction, counted: Tensor | None = None
) -> Tensor:
    """'none': the per-position losses; 'sum': their sum (over the counted positions: the others
    are 0); 'mean': their sum / denominator."""
    if reduction == "none":
        return per_element
    total = nll_sum(per_element, counted)
    return total if reduction == "sum" else total / denominator


@dataclass(slots=True)
class Picked:
    """The target classes picked out of the log-probabilities, ignored positions masked."""

    counted: Tensor  # (batch) bool: target != ignore_index
    counted_f: Tensor  # (batch) the same as 1.0 / 0.0
    idx: Tensor  # (batch with the class dim kept as 1): the target class, 0 where ignored
    one_hot: Tensor | None  # (logits) 1.0 at the target class, rows of 0 where ignored; None if
    # not asked for
    w_t: Tensor  # (batch) the weight of each position's target class, 0 where ignored
    nll: Tensor  # (batch) -w_t * log_probs[target], 0 where ignored
    denominator: Tensor  # 0-d: sum of w_t, what 'mean' divides by


def pick(
    log_probs: Tensor, t: Tensor, w: Tensor | None, ignore_index: int, cd: int, one_hot: bool
) -> Picked:
    """The picking, and the one-hot target if `one_hot`."""
    counted = t != ignore_index
    idx = t.masked_fill(~counted, 0).unsqueeze(cd)  # ignored positions: class 0, weight 0
    counted_f = counted.to(log_probs.dtype)
    one_hots = None
    if one_hot:
        one_hots = torch.zeros_like(log_probs).scatter_(cd, idx, counted_f.unsqueeze(cd))
    w_t = counted_f if w is None else w[idx.squeeze(cd)] * counted_f
    nll = (-log_probs.gather(cd, idx).squeeze(cd) * w_t).masked_fill_(~counted, 0.0)
    denominator = counted_f.sum() if w is None else nll_sum(w_t, counted)  # a count is exact
    return Picked(counted, counted_f, idx, one_hots, w_t, nll, denominator)


def index_targets(
    sm: Softmax,
    t: Tensor,
    w: Tensor | None,
    ignore_index: int,
    reduction: Reduction,
    cd: int,
    wanted: frozenset[str],
) -> TargetStages:
    """Class indices, some of which may equal ignore_index; the gradient, one_hot and
    target_dist only if `wanted` names them."""
    p = pick(sm.log_probs, t, w, ignore_index, cd, wants(wanted, "one_hot", "target_dist"))
    divides_by_zero = reduction == "mean" and not p.denominator
    return TargetStages(
        one_hot=p.one_hot,
        target_dist=p.one_hot,
        per_element_loss=p.nll,
        loss=reduce_nll(p.nll, p.denominator, reduction, p.counted),
        grad=picked_grad(sm, p, reduction, divides_by_zero, cd) if "grad" in wanted else None,
        denominator=p.denominator,
        divides_by_zero=divides_by_zero,
        all_ignored=not p.counted.any(),
    )


def picked_grad(
    sm: Softmax, p: Picked, reduction: Reduction, divides_by_zero: bool, cd: int
) -> Tensor:
    """The gradient of index_targets' loss."""
    softmax = sm.softmax_for_grad()
    grad = index_grad(softmax, p.idx, p.w_t * scale_for(p.denominator, reduction), cd)
    if divides_by_zero:
        grad = when_mean_divides_by_zero(grad, softmax, p.counted, cd)
    return grad


def every_position_counts(
    sm: Softmax, t: Tensor, w: Tensor | None, reduction: Reduction, cd: int, wanted: frozenset[str]
) -> TargetStages:
    """Class indices none of which equals ignore_index: index_targets with every mask True,
    without the masks (the same numbers, in fewer steps; this is the common case). The
    gradient, one_hot and target_dist only if `wanted` names them."""
    idx = t.unsqueeze(cd)
    grad = "grad" in wanted
    one_hot = None  # (logits), for its stages and the gradient
    if grad or wants(wanted, "one_hot", "target_dist"):
        one_hot = torch.zeros_like(sm.log_probs).scatter_(cd, idx, 1.0)
    picked = sm.log_probs.gather(cd, idx).squeeze(cd)  # (batch) log_probs at the targets
    n = t.numel()
    if w is None:  # 'mean' divides by the number of positions
        w_t = None
        per_element = picked.neg_()
        denominator = torch.scalar_tensor(n, dtype=picked.dtype, device=picked.device)
        divides_by_zero = reduction == "mean" and n == 0
    else:  # 'mean' divides by the sum of the targets' weights
        w_t = w[t]
        per_element = picked.neg_().mul_(w_t)
        denominator = nll_sum(w_t)
        divides_by_zero = reduction == "mean" and not denominator
    return TargetStages(
        one_hot=one_hot,
        target_dist=one_hot,
        per_element_loss=per_element,
        loss=reduce_nll(per_element, denominator, reduction),
        grad=every_position_grad(
            sm.softmax_for_grad(), one_hot, idx, w_t, denominator, reduction, cd
        )
        if grad
        else None,
        denominator=denominator,
        divides_by_zero=divides_by_zero,
    )
