"""cross_entropy_stages(..., wanted=...): the stages off the way to those asked for (the
gradient, the warnings, softmax, the shifted steps, log_sum_exp, one_hot, target_dist,
predicted) only when asked for, and
every stage asked for the same, bit for bit, as in the full computation (and PyTorch's)."""

import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from app.engine import STAGES, cross_entropy_stages

F64 = torch.float64
gen = torch.Generator().manual_seed(17)
Z = torch.randn(5, 4, generator=gen, dtype=F64) * 3
W = torch.rand(4, generator=gen, dtype=F64) + 0.1
PROBABILITIES = torch.softmax(torch.randn(5, 4, generator=gen, dtype=F64), dim=1)
IGNORED = torch.tensor([0, -100, 3, 2, -100])
# (logits, target, options): every path of cross_entropy_stages, and 'mean' dividing by 0
CASES: dict[str, tuple[torch.Tensor, torch.Tensor, dict[str, Any]]] = {
    "every position counts": (Z, torch.tensor([0, 1, 3, 2, 1]), {}),
    "every position counts, weighted": (Z, torch.tensor([0, 1, 3, 2, 1]), {"weight": W}),
    "some ignored": (Z, IGNORED, {"weight": W, "reduction": "sum"}),
    "all ignored": (Z, torch.full((5,), -100), {}),
    "smoothed": (Z, IGNORED, {"label_smoothing": 0.2}),
    "smoothed, all ignored": (Z, torch.full((5,), -100), {"label_smoothing": 0.2, "weight": W}),
    "probabilities": (Z, PROBABILITIES, {"weight": W, "label_smoothing": 0.1}),
    "one position, warnings": (torch.tensor([1e308, -1e308, 0.0], dtype=F64), torch.tensor(1), {}),
    # the max without the argmax (amax) is max's, NaN and infinities included
    "NaN and infinities": (
        torch.tensor(
            [[1.0, math.nan, 2.0], [math.inf, 0.0, -math.inf], [-math.inf] * 3], dtype=F64
        ),
        torch.tensor([0, 1, 2]),
        {},
    ),
}


def same(a: object, b: object) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return (
            a.dtype == b.dtype
            and a.shape == b.shape
            and torch.equal(a.nan_to_num(), b.nan_to_num())
        )
    return a == b


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", STAGES)
def test_each_stage_alone_is_the_full_answers(case: str, name: str) -> None:
    z, t, options = CASES[case]
    full = cross_entropy_stages(z, t, **options)
    alone = cross_entropy_stages(z, t, **options, wanted=[name])
    assert same(getattr(alone, name), getattr(full, name))
    assert (alone.grad is None) == (name != "grad")
    notes = name in ("warnings", "warning_codes")  # one computation gives both
    assert alone.warnings == (full.warnings if notes else [])
    assert alone.warning_codes == (full.warning_codes if notes else [])


@pytest.mark.parametrize("case", CASES)
def test_nothing_asked_for_still_computes_the_loss(case: str) -> None:
    z, t, options = CASES[case]
    stages = cross_entropy_stages(z, t, **options, wanted=())
    assert stages.grad is None and stages.warnings == []
    assert stages.softmax is None and stages.log_sum_exp is None and stages.one_hot is None
    assert stages.predicted is None
    shifted = (stages.max_logit, stages.shifted, stages.exp, stages.sum_exp)
    assert shifted == (None, None, None, None)  # log_probs is PyTorch's log_softmax alone
    # probability targets are the target distribution (smoothed): the loss needs it
    assert (stages.target_dist is None) == (t.shape != z.shape)
    expected = F.cross_entropy(z, t, **options)
    assert torch.equal(stages.torch_loss.nan_to_num(), expected.nan_to_num())
    torch.testing.assert_close(stages.loss, expected, rtol=1e-12, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("case", CASES)
def test_the_gradient_alone_is_autograds(case: str) -> None:
    z, t, options = CASES[case]
    leaf = z.clone().requires_grad_()
    F.cross_entropy(leaf, t, **options).sum().backward()
    grad = cross_entropy_stages(z, t, **options, wanted=["grad"]).grad
    assert grad is not None and leaf.grad is not None
    torch.testing.assert_close(grad, leaf.grad, rtol=1e-10, atol=1e-12, equal_nan=True)


def test_the_warnings_alone() -> None:
    z, t, options = CASES["all ignored"]
    warnings = cross_entropy_stages(z, t, **options, wanted=["warnings"]).warnings
    assert warnings == [
        "'mean' divides by 0 because every target equals ignore_index (-100), "
        "so the loss is NaN, as in PyTorch."
    ]
    assert math.isnan(cross_entropy_stages(z, t, wanted=["loss"]).loss.item())


def test_one_hot_alone_leaves_the_smoothed_target_out():
    z, t, options = CASES["smoothed"]
    stages = cross_entropy_stages(z, t, **options, wanted=["one_hot"])
    assert stages.one_hot is not None and stages.target_dist is None


@pytest.mark.parametrize("name", ["max_logit", "shifted", "exp", "sum_exp"])
def test_the_shifted_steps_alone_leave_the_rest_out(name: str) -> None:
    """Asking for one of the shifted steps computes them, and not what is made of them."""
    z, t, options = CASES["every position counts"]
    stages = cross_entropy_stages(z, t, **options, wanted=[name])
    shifted = ("max_logit", "shifted", "exp", "sum_exp")
    assert all(isinstance(getattr(stages, s), torch.Tensor) for s in shifted)
    assert stages.log_sum_exp is None and stages.predicted is None and stages.softmax is None
