"""The warnings, sentence for sentence, on the inputs that need them; the numbers they explain
are PyTorch's (an independent F.cross_entropy and autograd run)."""

import math

import pytest
import torch
import torch.nn.functional as F

from app.engine import cross_entropy_stages

F64 = torch.float64


def autograd(z, t, **options):
    leaf = z.clone().requires_grad_()
    loss = F.cross_entropy(leaf, t, **options)
    loss.sum().backward()
    return loss.detach(), leaf.grad


def same(actual, expected):
    torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-10, equal_nan=True)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("probabilities", [False, True])
def test_an_empty_batch_with_mean(probabilities, weighted):
    z = torch.zeros(0, 4, dtype=F64)
    t = torch.zeros(0, 4, dtype=F64) if probabilities else torch.zeros(0, dtype=torch.long)
    w = torch.ones(4, dtype=F64) if weighted else None
    stages = cross_entropy_stages(z, t, w)
    assert math.isnan(stages.loss.item()) and math.isnan(F.cross_entropy(z, t, w).item())
    assert stages.grad is not None
    assert stages.grad.shape == (0, 4)
    assert stages.warnings == [
        "'mean' divides by 0 because the batch is empty, so the loss is NaN, as in PyTorch."
    ]
    assert cross_entropy_stages(z, t, w, reduction="sum").warnings == []


def test_weights_summing_to_zero_with_no_target_ignored():
    z = torch.tensor([[0.5, 2.0, -1.0, 0.0], [1.0, 0.0, 0.5, 3.0]], dtype=F64)
    t = torch.tensor([0, 1])
    w = torch.tensor([1.0, -1.0, 0.0, 0.0], dtype=F64)
    stages = cross_entropy_stages(z, t, w)
    loss, grad = autograd(z, t, weight=w)
    same(stages.loss, loss)
    same(stages.grad, grad)
    assert stages.loss.item() == -math.inf
    assert stages.warnings == [
        "'mean' divides by 0 because the weights of the non-ignored targets sum to 0, so the "
        "loss is -inf, as in PyTorch. The gradient at the counted positions is not finite either."
    ]


def test_every_target_ignored():
    z = torch.tensor([[0.5, 2.0], [1.0, 0.0]], dtype=F64)
    t = torch.tensor([-1, -1])
    mean = cross_entropy_stages(z, t, ignore_index=-1)
    assert mean.warnings == [
        "'mean' divides by 0 because every target equals ignore_index (-1), so the loss is NaN, "
        "as in PyTorch."
    ]
    summed = cross_entropy_stages(z, t, ignore_index=-1, reduction="none")
    assert summed.warnings == ["Every target equals ignore_index (-1), so the loss is 0."]
    some = cross_entropy_stages(z, torch.tensor([-1, 0]), ignore_index=-1)
    assert some.warnings == []


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_logits_so_far_apart_that_the_shift_overflows(label_smoothing):
    z = torch.tensor([[1e308, -1e308, 0.0]], dtype=F64)
    stages = cross_entropy_stages(z, torch.tensor([1]), label_smoothing=label_smoothing)
    same(stages.loss, F.cross_entropy(z, torch.tensor([1]), label_smoothing=label_smoothing))
    assert stages.warnings == [
        "Some logits are so far below their row's maximum (more than about 1.8e308) that "
        "subtracting the maximum overflows to -inf: those classes get probability 0 and "
        "log-probability -inf, and any target mass on them makes the loss infinite, or NaN "
        "where 0 is multiplied by -inf."
    ]


def test_a_loss_that_overflows_at_some_positions():
    z = torch.tensor([[0.0, 50.0], [0.0, 60.0], [0.0, 0.0]], dtype=F64)
    t = torch.tensor([0, 0, 1])
    w = torch.tensor([1e308, 1.0], dtype=F64)
    stages = cross_entropy_stages(z, t, w, reduction="none")
    same(stages.loss, F.cross_entropy(z, t, w, reduction="none"))
    assert stages.warnings == [
        "The loss is not finite at 2 positions: it overflows float64 (the weights or logits are "
        "too large)."
    ]
    assert cross_entropy_stages(z[2:], t[2:], w, reduction="none").warnings == []


@pytest.mark.parametrize(
    ("reduction", "where", "code", "params"),
    [
        ("none", "is not finite at 2 positions", "loss_overflow_rows", {"positions": 2}),
        ("sum", "is +inf", "loss_overflow", {"loss": "+inf"}),
        ("mean", "is NaN", "loss_overflow", {"loss": "NaN"}),
    ],
)
def test_the_overflow_note_as_a_code(reduction, where, code, params):
    z = torch.tensor([[0.0, 50.0], [0.0, 60.0], [0.0, 0.0]], dtype=F64)
    t = torch.tensor([0, 0, 1])
    w = torch.tensor([1e308, 1.0], dtype=F64)
    stages = cross_entropy_stages(z, t, w, reduction=reduction)
    same(stages.loss, F.cross_entropy(z, t, w, reduction=reduction))
    text = f"The loss {where}: it overflows float64 (the weights or logits are too large)."
    assert stages.warnings == [text]
    assert stages.warning_codes == [{"code": code, "params": params}]
