"""nn.CrossEntropyLoss taken apart: every stage from logits to loss and gradient, in float64.

The semantics are PyTorch's, from aten/src/ATen/native/LossNLL.cpp, one module per function:
    cross_entropy_loss_symint           which path a call takes (here), what it rejects (checks.py)
    nll_loss_out_frame                  class indices: ignore_index, weights, the 'mean' divisor
                                        (index.py)
    cross_entropy_loss_label_smoothing  class indices with label_smoothing > 0 (smoothing.py)
    cross_entropy_loss_prob_target      class-probability targets (probability.py)
The shared softmax and log_softmax stages are in stages.py, the gradient in gradient.py, the
warnings in notes.py; reference.py is the plain case in a few lines, for reading.
"""

from collections.abc import Collection

import torch.nn.functional as F
from torch import Tensor

from app.engine.checks import checked_inputs
from app.engine.errors import InputError
from app.engine.index import every_position_counts, index_targets
from app.engine.notes import notes
from app.engine.probability import probability_targets
from app.engine.smoothing import smoothed_targets
from app.engine.stages import (
    STAGES,
    WARNINGS,
    Reduction,
    Stages,
    assemble,
    class_dim,
    softmax_stages,
    wants,
)


def cross_entropy_stages(
    logits: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
    label_smoothing: float = 0.0,
    wanted: Collection[str] = STAGES,
) -> Stages:
    """Compute F.cross_entropy(logits, target, ...) stage by stage, plus its gradient.

    `wanted` names the stages the caller will read; a stage off the way to them is not computed.
    grad, softmax, max_logit, shifted, exp, sum_exp, log_sum_exp, one_hot, target_dist and
    predicted are None unless named (or needed for one that is: the gradient needs softmax, and
    log_sum_exp, predicted and the warnings the max and the shifted steps), the warnings empty
    unless "warnings" or "warning_codes" is named. Every other stage is on the way to the loss,
    or costs next to nothing, and is always computed; so is torch_loss, the cross-check. A stage
    computed is the same, bit for bit, whatever else is asked for.

    The stages are PyTorch's bit for bit, NaN and inf included, on every CPU: loss as
    F.cross_entropy, log_sum_exp as torch.logsumexp, softmax and log_probs as torch.softmax and
    log_softmax (they are PyTorch's kernels: where those run AVX2, separate exp(), log() and
    division steps round otherwise), the class-index losses summed in nll_loss's order
    (index.nll_sum). `python -m bench.agreement` counts it on the CPU it runs on. The gradient
    is computed in closed form, not by autograd, so it agrees with autograd's to rounding (a
    few ulps of the largest w_c * scale, where entries cancel), not bit for bit. One known
    exception: with probability targets, weights near the float64 maximum and 'mean',
    sum_c w_c q_c can overflow here where autograd divides by N first; the gradient is then inf
    or NaN where autograd's is finite (no JSON request with sensible weights comes near it).

    Every input that requires grad is detached first, so no stage requires grad and autograd
    records nothing (without the cost of entering torch.no_grad() on every call)."""
    x = checked_inputs(logits, target, weight, ignore_index, reduction, label_smoothing)
    z, t, w, eps = x.z, x.t, x.w, float(label_smoothing)

    cd = class_dim(z)
    wanted = frozenset(wanted)
    sm = softmax_stages(z, cd, wanted)
    # PyTorch's own answer before ours: it is the cross-check, and it fails fast on anything we
    # missed.
    torch_loss = pytorch_loss(z, sm.log_probs, t, w, ignore_index, reduction, eps, x.probabilities)
    # the paths of cross_entropy_loss_symint
    if x.probabilities:  # the target has the logits' shape
        path = probability_targets(sm, t, w, reduction, eps, cd, wanted)
    elif eps > 0:
        path = smoothed_targets(sm, t, w, ignore_index, reduction, eps, cd, wanted)
    elif x.all_counted:  # nll_loss_out_frame with no target equal to ignore_index
        path = every_position_counts(sm, t, w, reduction, cd, wanted)
    else:
        path = index_targets(sm, t, w, ignore_index, reduction, cd, wanted)

    warnings = notes(z, sm, path, ignore_index) if wants(wanted, *WARNINGS) else []
    return assemble(z, sm, path, torch_loss, warnings)


def pytorch_loss(
    z: Tensor,
    log_probs: Tensor,
    t: Tensor,
    w: Tensor | None,
    ignore_index: int,
    reduction: Reduction,
    eps: float,
    probabilities: bool,
) -> Tensor:
    """F.cross_entropy(z, t, ...). For class indices without label smoothing that is, in
    cross_entropy_loss_symint, nll_loss_nd(log_softmax(z, class_dim), t, ...): here nll_loss
    runs on the log_softmax already computed (log_probs, torch.log_softmax's own), so the same
    kernels give the same number without a second log_softmax over the whole batch (8.4 ms at
    100,000 x 10, on one thread of the development machine). Smoothing and probability targets
    take F.cross_entropy itself."""
    try:
        if probabilities or eps > 0:
            return F.cross_entropy(
                z, t, w, ignore_index=ignore_index, reduction=reduction, label_smoothing=eps
            )
        return F.nll_loss(log_probs, t, w, ignore_index=ignore_index, reduction=reduction)
    except (RuntimeError, ValueError, IndexError) as e:
        raise InputError(
            f"PyTorch rejected this input: {e}", code="pytorch_rejected", error=str(e)
        ) from e
