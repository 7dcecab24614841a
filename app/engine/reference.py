"""The maths in 25 lines: cross-entropy and its gradient as a textbook writes them, for class
indices without weights, label smoothing or ignored targets. The engine (loss.py) adds those and
keeps every stage, and rounds as PyTorch's kernels do; tests/engine/test_reference.py checks
that the two give the same numbers to rounding."""

import torch
from torch import Tensor


def cross_entropy(logits: Tensor, target: Tensor, reduction: str = "mean") -> tuple[Tensor, Tensor]:
    """The loss and its gradient d loss / d logits, for logits of shape (C), (N, C) or
    (N, C, d1, ...) and target class indices of shape (), (N) or (N, d1, ...)."""
    c = 0 if logits.dim() == 1 else 1  # the class dim
    target = target.unsqueeze(c)  # as many dims as the logits, 1 in the class dim

    # softmax and its log, shifted by the max so that exp() cannot overflow
    shifted = logits - logits.max(dim=c, keepdim=True).values  # every entry <= 0
    exp = shifted.exp()
    sum_exp = exp.sum(dim=c, keepdim=True)
    softmax = exp / sum_exp
    log_probs = shifted - sum_exp.log()

    # the loss at each position: minus the log-probability of the target class
    losses = -log_probs.gather(c, target).squeeze(c)

    # the gradient of the summed loss: softmax minus the one-hot target
    one_hot = torch.zeros_like(logits).scatter_(c, target, 1.0)
    grad = softmax - one_hot

    if reduction == "mean":  # the average over the positions, so the gradient is divided too
        return losses.mean(), grad / losses.numel()
    if reduction == "sum":
        return losses.sum(), grad
    return losses, grad  # 'none': one loss per position, and the gradient of their sum
