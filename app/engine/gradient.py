"""The gradient of the loss with respect to the logits, in closed form.

For one position, with q the target distribution (one_hot, smoothed or given) and w the class
weights (1 without weights),

    loss = -sum_c w_c q_c log_softmax(z)_c
    d loss / d z_j = softmax_j * sum_c w_c q_c - w_j q_j

which is softmax - one_hot with no weights and no smoothing. 'mean' multiplies the gradient by
1 / denominator; for 'none' it is the gradient of the sum of the per-position losses (what
loss.sum().backward() gives). Each function below is this formula for one kind of target,
written so that the big (logits-shaped) tensors are touched as few times as possible.
"""

import math

import torch
from torch import Tensor

from app.engine.stages import Reduction, per_class


def scale_for(denominator: Tensor, reduction: Reduction) -> Tensor:
    """What the gradient is multiplied by: 1 / denominator for 'mean' (inf if it is 0), else 1."""
    return 1 / denominator if reduction == "mean" else torch.ones_like(denominator)


def index_grad(softmax: Tensor, idx: Tensor, ws: Tensor, cd: int) -> Tensor:
    """Class indices without smoothing: q is one_hot, so sum_c w_c q_c = w_t and w_j q_j is w_t
    at the target. ws (batch) is each position's w_t * scale: softmax * ws, less ws at the
    target class (a scatter, not a logits-sized subtraction)."""
    grad = softmax * ws.unsqueeze(cd)
    return grad.scatter_add_(cd, idx, ws.neg().unsqueeze(cd))


def when_mean_divides_by_zero(grad: Tensor, softmax: Tensor, counted: Tensor, cd: int) -> Tensor:
    """The gradient that autograd gives where 'mean' divides by 0 (every target ignored, or the
    counted targets' weights sum to 0), which the closed form's 0 * inf does not.

    Autograd goes through log_softmax's backward, grad_j = g_j - softmax_j * sum_c g_c, with g
    the gradient with respect to log_probs:
    - ignored rows: g = 0 (neither nll_loss nor the smoothing term touches them), so grad is
      softmax * 0: 0, or NaN where the row's softmax is NaN (a NaN or infinite logit);
    - counted rows: grad as given. Without smoothing the closed form already has autograd's
      numbers (+-inf, and NaN at the target). With label smoothing g_c = -w_c * (eps/C) / 0 at
      every class, and weights that sum to 0 over the counted targets include a 0 or both
      signs, so sum_c g_c is NaN, and so is every entry of the row: the caller passes NaN."""
    return torch.where(counted.unsqueeze(cd), grad, softmax * 0.0)


def every_position_grad(
    softmax: Tensor,
    one_hot: Tensor | None,
    idx: Tensor,
    w_t: Tensor | None,
    denominator: Tensor,
    reduction: Reduction,
    cd: int,
) -> Tensor:
    """index_grad when no position is ignored (w_t None: no weights, and one_hot is needed)."""
    if w_t is not None:
        ws = w_t * denominator.reciprocal() if reduction == "mean" else w_t
        return index_grad(softmax, idx, ws, cd)
    assert one_hot is not None, "every_position_counts computes one_hot for the gradient"
    if reduction != "mean":
        return softmax - one_hot
    # 1/n in Python is the float64 that denominator.reciprocal() gives (inf for n = 0);
    # one_hot * scale is exactly 0 or scale: softmax * scale, less scale at the target
    n = idx.numel()
    scale = 1 / n if n else math.inf
    return (softmax * scale).sub_(one_hot, alpha=scale)


def smoothed_grad(
    softmax: Tensor,
    counted_f: Tensor,
    idx: Tensor,
    w_t: Tensor,
    w: Tensor | None,
    eps: float,
    scale: Tensor,
    cd: int,
) -> Tensor:
    """Class indices with label smoothing eps, q = (1-eps) one_hot + eps/C where counted:
    sum_c w_c q_c = (1-eps) w_t + eps/C sum_c w_c, and w_j q_j is (1-eps) w_t at the target
    (a scatter) plus eps/C w_j where counted."""
    C = softmax.shape[cd]
    w_sum = C if w is None else float(w.sum())
    uniform = eps / C * w_sum  # eps/C sum_c w_c
    if math.isinf(uniform) and w is not None:  # the sum overflowed; eps/C * w_c may not
        uniform = float((eps / C * w).sum())
    s = (1 - eps) * w_t + uniform * counted_f  # (batch) sum_c w_c q_c
    grad = softmax * (s * scale).unsqueeze(cd)
    grad.scatter_add_(cd, idx, (-(1 - eps) * w_t * scale).unsqueeze(cd))
    smoothing = counted_f.unsqueeze(cd) * (eps / C * float(scale))  # (batch, 1, ...)
    if w is None:
        return grad.sub_(smoothing)
    return grad.addcmul_(smoothing, per_class(w, softmax, cd), value=-1)


def probability_grad(
    softmax: Tensor,
    wq: Tensor,
    target_sums: Tensor,
    weighted: bool,
    eps: float,
    scale: Tensor,
    cd: int,
) -> Tensor:
    """Probability targets: wq (logits) is w_c q_c; sum_c w_c q_c is its sum over the classes,
    or, without weights, (1-eps) sum_c t_c + eps from the target sums already computed."""
    s = wq.sum(dim=cd) if weighted else (1 - eps) * target_sums + eps  # (batch)
    grad = softmax * (s * scale).unsqueeze(cd)
    return grad.sub_(wq, alpha=float(scale))
