"""The stages every path shares: the record of them all, and softmax and log_softmax, in steps.

Shapes: logits are (C), (N, C) or (N, C, d1..dK), with the classes in dim 0 for (C) and dim 1
otherwise, as in PyTorch. The batch shape is the logits shape without the class dim: (), (N) or
(N, d1..dK).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

import torch
from torch import Tensor

Reduction = Literal["mean", "sum", "none"]
REDUCTIONS: tuple[str, ...] = get_args(Reduction)


@dataclass
class Stages:
    """Every intermediate of the loss, from logits to loss and gradient."""

    logits: Tensor  # logits-shaped
    max_logit: Tensor | None  # batch-shaped: the shift that keeps exp() from overflowing
    shifted: Tensor | None  # logits - max_logit, every entry <= 0
    exp: Tensor | None  # exp(shifted), in (0, 1]
    sum_exp: Tensor | None  # batch-shaped, >= 1
    log_sum_exp: Tensor | None  # batch-shaped: max_logit + log(sum_exp); max_logit where it is
    # +-inf
    softmax: Tensor | None  # exp / sum_exp
    log_probs: Tensor  # shifted - log(sum_exp), i.e. log_softmax
    one_hot: Tensor | None  # index targets: 1.0 at the target class, rows of 0 where ignored
    target_dist: Tensor | None  # q, the distribution actually used (after label smoothing)
    per_element_loss: Tensor  # batch-shaped: -sum_c w_c q_c log_probs_c, 0 where ignored
    loss: Tensor  # 0-d for 'mean' and 'sum', batch-shaped for 'none'
    grad: Tensor | None  # d loss / d logits, logits-shaped (of the sum, for 'none'); None if
    # not asked for
    predicted: Tensor | None  # batch-shaped int64 argmax; None if not asked for
    denominator: Tensor  # 0-d: what 'mean' divides by
    torch_loss: Tensor  # F.cross_entropy on the same input, as a cross-check
    warnings: list[str]
    warning_codes: list[dict[str, Any]]  # {"code", "params"} of each warning, in the same order


STAGES: tuple[str, ...] = tuple(f.name for f in fields(Stages))
WARNINGS = ("warnings", "warning_codes")  # one computation gives both


def wants(wanted: frozenset[str], *names: str) -> bool:
    """Whether the caller reads any of these stages."""
    return not wanted.isdisjoint(names)


def class_dim(z: Tensor) -> int:
    """Where the classes are: dim 0 of (C), dim 1 of (N, C, ...)."""
    return 0 if z.dim() == 1 else 1


@dataclass(slots=True)
class Softmax:
    """softmax and log_softmax of the logits, step by step: the first stages of Stages."""

    max_logit: Tensor | None  # batch-shaped; None unless one of SHIFTED is asked for, as the
    # next three
    predicted: Tensor | None  # batch-shaped int64: where the max is; None unless asked for
    shifted: Tensor | None  # logits-shaped
    exp: Tensor | None  # logits-shaped
    sum_exp: Tensor | None  # batch-shaped
    log_sum_exp: Tensor | None  # batch-shaped; None unless asked for (or the warnings)
    softmax: Tensor | None  # logits-shaped; None unless asked for (or the gradient)
    log_probs: Tensor  # logits-shaped
    finite: bool | None  # whether every log-probability is finite (if not, the notes look
    # closer); None where log_sum_exp is

    def softmax_for_grad(self) -> Tensor:
        """softmax, which every gradient starts from (softmax_stages computes it for one)."""
        assert self.softmax is not None, "softmax_stages was not asked for the gradient"
        return self.softmax


# The shifted steps (z - max, exp and their sum) and what is made of them: computed only when one
# of these is asked for, since log_probs and softmax are PyTorch's kernels' own.
SHIFTED = ("max_logit", "shifted", "exp", "sum_exp", "log_sum_exp", "predicted", *WARNINGS)


def softmax_stages(z: Tensor, cd: int, wanted: frozenset[str]) -> Softmax:
    """softmax and log_softmax over the class dim; log_probs and softmax are PyTorch's own, bit
    for bit, on every CPU. softmax only if `wanted` names it or the gradient. The shifted steps
    (the max, z - max, exp and their sum) only if it names one of SHIFTED; log_sum_exp, and
    whether log_probs is finite, only if it names log_sum_exp or the warnings; the argmax
    (predicted) only if it names it."""
    # log_probs = shifted - log(sum_exp) and softmax = exp / sum_exp, as PyTorch's kernels
    # compute them: where those run AVX2, the separate steps below rounded otherwise in the last
    # bits (on the development machine's AVX2 CPU: softmax in 600 of 600 random batches,
    # log_probs in 592); python -m bench.agreement counts it on any CPU.
    log_probs = torch.log_softmax(z, cd)  # (logits)
    softmax = torch.softmax(z, cd) if wants(wanted, "softmax", "grad") else None
    if not wants(wanted, *SHIFTED):
        return Softmax(None, None, None, None, None, None, softmax, log_probs, None)
    if wants(wanted, "predicted"):
        max_logit, predicted = z.max(dim=cd)  # (batch); the argmax is the prediction
    else:
        max_logit, predicted = z.amax(dim=cd), None  # the same max, without looking for where
    shifted = z - max_logit.unsqueeze(cd)  # (logits), every entry <= 0: exp cannot overflow
    exp = shifted.exp()  # (logits), in (0, 1]
    sum_exp = exp.sum(dim=cd)  # (batch), >= 1: the max contributes exp(0)
    finite = log_sum_exp = None
    if wants(wanted, "log_sum_exp", *WARNINGS):
        # A row with a NaN or infinite logit (or one that overflows) has a log-probability that
        # is NaN or -inf; one reduction rules that out, the rest looks closer only if it fails.
        finite = not z.numel() or math.isfinite(float(log_probs.min()))
        log_sum_exp = max_logit + sum_exp.log()  # torch.logsumexp's steps, bit for bit
        if not finite:
            # where the max is +-inf (a row of -inf, or one with +inf), inf - inf makes the row
            # NaN; torch.logsumexp shifts by 0 there instead, and gives the max: -inf or +inf
            log_sum_exp = torch.where(max_logit.isinf(), max_logit, log_sum_exp)
    return Softmax(
        max_logit, predicted, shifted, exp, sum_exp, log_sum_exp, softmax, log_probs, finite
    )


@dataclass(slots=True)
class TargetStages:
    """What a path computes from the log-probabilities and the target: the rest of Stages, and
    what the notes need to explain it."""

    one_hot: Tensor | None  # logits-shaped; None for probability targets, or not asked for
    target_dist: Tensor | None  # logits-shaped; None if not asked for
    per_element_loss: Tensor  # batch-shaped
    loss: Tensor  # 0-d, or batch-shaped for 'none'
    grad: Tensor | None  # logits-shaped; None when not asked for
    denominator: Tensor  # 0-d
    divides_by_zero: bool  # whether 'mean' divides by 0
    all_ignored: bool = False  # class indices: every target equals ignore_index
    target_sums: Tensor | None = None  # probability targets: each position's sum over classes


def per_class(w: Tensor, z: Tensor, cd: int) -> Tensor:
    """Class weights (C) as a tensor that broadcasts against the logits: (C, 1, ..., 1)."""
    return w.view(w.numel(), *([1] * (z.dim() - cd - 1)))


def assemble(
    z: Tensor,
    sm: Softmax,
    path: TargetStages,
    torch_loss: Tensor,
    warnings: Sequence[tuple[str, str, dict[str, Any]]],
) -> Stages:
    """The record of every stage."""
    return Stages(
        logits=z,
        max_logit=sm.max_logit,
        shifted=sm.shifted,
        exp=sm.exp,
        sum_exp=sm.sum_exp,
        log_sum_exp=sm.log_sum_exp,
        softmax=sm.softmax,
        log_probs=sm.log_probs,
        one_hot=path.one_hot,
        target_dist=path.target_dist,
        per_element_loss=path.per_element_loss,
        loss=path.loss,
        grad=path.grad,
        predicted=sm.predicted,
        denominator=path.denominator,
        torch_loss=torch_loss,
        warnings=[text for text, _, _ in warnings],
        warning_codes=[{"code": code, "params": params} for _, code, params in warnings],
    )
