"""The loss engine against F.cross_entropy and autograd, over every option, plus its edge cases."""

import math
import zlib

import numpy as np
import orjson
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from app.engine import STAGES, InputError, Stages, cross_entropy_stages
from app.web.serialize import stages_to_json

F64 = torch.float64
SHAPES = [(5,), (4, 5), (3, 5, 2), (2, 5, 3, 2)]  # (C), (N, C), (N, C, d1), (N, C, d1, d2)


def seeded(*parts: object) -> torch.Generator:
    """A generator seeded from the test's parameters, the same in every run (hash() of a
    string is not: it changes with PYTHONHASHSEED)."""
    return torch.Generator().manual_seed(zlib.crc32(repr(parts).encode()))


def class_dim(shape: tuple[int, ...]) -> int:
    return 0 if len(shape) == 1 else 1


def batch_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    cd = class_dim(shape)
    return shape[:cd] + shape[cd + 1 :]


def reference(logits, target, **options):
    """PyTorch's loss and autograd's gradient (of the sum, for 'none') on a float64 leaf."""
    z = logits.detach().to(F64).requires_grad_()
    loss = F.cross_entropy(z, target, **options)
    loss.sum().backward()
    assert z.grad is not None
    return loss.detach(), z.grad


def close(actual, expected, tol=1e-10):
    torch.testing.assert_close(actual, expected, rtol=tol, atol=tol, equal_nan=True)


def make_index_target(shape, C, ignore, gen):
    """Class indices for logits of `shape`, and the ignore_index that goes with them."""
    t = torch.randint(0, C, batch_shape(shape), generator=gen)
    if ignore == "default":
        return t, -100
    if ignore == "some":  # a few positions, not all, set to ignore_index
        flat = t.view(-1)
        flat[:: 2 if flat.numel() > 1 else 1] = -1
        if flat.numel() > 1:
            flat[1] = 0
        return t, -1
    if ignore == "all":
        return torch.full_like(t, -100), -100
    if ignore == "class":  # ignore_index names a real class; make sure some targets hit it
        t.view(-1)[0] = 1
        return t, 1
    raise AssertionError(ignore)


def exact(actual, expected):
    """Bit for bit (any NaN equal to any NaN, and 0.0 to -0.0)."""
    torch.testing.assert_close(actual, expected, rtol=0, atol=0, equal_nan=True)


def check_against_pytorch(z, t, **options):
    """Every stage that PyTorch can compute on its own, compared: the loss, softmax,
    log_softmax and logsumexp bit for bit on every CPU (PyTorch's AVX2 kernels round otherwise
    than separate steps would), the gradient to rounding (it is computed in closed form)."""
    stages = cross_entropy_stages(z, t, **options)
    loss, grad = reference(z, t, **options)
    cd = class_dim(tuple(z.shape))
    exact(stages.loss, loss)
    exact(stages.torch_loss, loss)
    close(stages.grad, grad)
    exact(stages.softmax, torch.softmax(z, cd))
    exact(stages.log_probs, torch.log_softmax(z, cd))
    exact(stages.log_sum_exp, torch.logsumexp(z, cd))
    shifted = z - z.max(cd, keepdim=True).values
    close(stages.shifted, shifted)
    close(stages.exp, torch.exp(shifted))
    close(stages.max_logit, z.amax(cd))
    close(stages.sum_exp, torch.exp(shifted).sum(cd))
    assert stages.predicted is not None and torch.equal(stages.predicted, z.argmax(cd))
    assert stages.predicted.dtype == torch.int64
    # the stated formula for the per-position loss holds for both kinds of target (where the
    # log-probabilities are finite: elsewhere 0 * -inf or 0 * NaN differs between the paths)
    w = options.get("weight")
    w_b = torch.ones(z.shape[cd], dtype=F64) if w is None else w
    w_b = w_b.view(-1, *([1] * (z.dim() - cd - 1)))
    assert stages.target_dist is not None
    formula = -(w_b * stages.target_dist * stages.log_probs).sum(cd)
    rows = torch.isfinite(stages.log_probs).all(cd)
    close(stages.per_element_loss[rows], formula[rows])
    if options.get("reduction") == "none":
        close(stages.loss, stages.per_element_loss)
    elif options.get("reduction", "mean") == "mean":
        close(stages.loss, stages.per_element_loss.sum() / stages.denominator)
    for name in ("logits", "shifted", "exp", "softmax", "log_probs", "target_dist", "grad"):
        assert getattr(stages, name).shape == z.shape, name
        assert getattr(stages, name).dtype == F64, name
    for name in ("max_logit", "sum_exp", "log_sum_exp", "per_element_loss", "predicted"):
        assert getattr(stages, name).shape == batch_shape(tuple(z.shape)), name
    assert stages.denominator.shape == ()
    return stages


# --- every combination of the options, explicitly ----------------------------------------------


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ignore", ["default", "some", "all", "class"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_index_targets_match_pytorch(shape, weighted, ignore, reduction, label_smoothing):
    gen = seeded(shape, weighted, ignore)
    C = shape[class_dim(shape)]
    z = torch.randn(shape, generator=gen, dtype=F64) * 3
    t, ignore_index = make_index_target(shape, C, ignore, gen)
    weight = torch.rand(C, generator=gen, dtype=F64) + 0.1 if weighted else None
    options = dict(
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        label_smoothing=label_smoothing,
    )
    stages = check_against_pytorch(z, t, **options)

    valid = t != ignore_index
    cd = class_dim(shape)
    assert stages.one_hot is not None
    # one_hot: 0/1, one 1 per counted position, rows of 0 where ignored
    assert torch.equal(stages.one_hot.sum(cd), valid.to(F64))
    # the one-hot sum equals the class-index shortcut, -log_probs[target]
    picked = stages.log_probs.gather(cd, t.masked_fill(~valid, 0).unsqueeze(cd)).squeeze(cd)
    close((stages.one_hot * stages.log_probs).sum(cd), picked * valid)
    # the target distribution sums to 1 where counted, 0 where ignored
    close(stages.target_dist.sum(cd), valid.to(F64))
    assert torch.all(stages.per_element_loss[~valid] == 0)
    # 'mean' divides by the count, or the summed weights, of the counted targets
    w_t = torch.ones_like(t, dtype=F64) if weight is None else weight[t.clamp(0, C - 1)]
    close(stages.denominator, (w_t * valid).sum())
    if reduction == "mean" and not valid.any():
        assert math.isnan(stages.loss.item())
        assert torch.all(stages.grad == 0)
        assert any("ignore_index" in w for w in stages.warnings)
    elif valid.any():
        assert stages.warnings == []


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ignore_index", [-100, -5])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_probability_targets_match_pytorch(
    shape, weighted, ignore_index, reduction, label_smoothing
):
    gen = seeded(shape, weighted)
    cd = class_dim(shape)
    C = shape[cd]
    z = torch.randn(shape, generator=gen, dtype=F64) * 3
    t = torch.softmax(torch.randn(shape, generator=gen, dtype=F64), cd)
    weight = torch.rand(C, generator=gen, dtype=F64) + 0.1 if weighted else None
    options = dict(
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        label_smoothing=label_smoothing,
    )
    stages = check_against_pytorch(z, t, **options)
    assert stages.one_hot is None
    close(stages.target_dist, t * (1 - label_smoothing) + label_smoothing / C)
    # 'mean' divides by the number of positions, never by the weights
    assert stages.denominator.item() == math.prod(batch_shape(shape))
    if ignore_index == -100:
        assert stages.warnings == []
    else:
        assert stages.warnings == [
            f"ignore_index ({ignore_index}) has no effect with class-probability targets: "
            "every position counts."
        ]


def test_grad_is_softmax_minus_one_hot_in_the_plain_case():
    z = torch.tensor([[2.0, 1.0, 0.1], [0.5, 2.5, -1.0]], dtype=F64)
    t = torch.tensor([0, 2])
    s = cross_entropy_stages(z, t, reduction="sum")
    expected = torch.softmax(z, 1) - F.one_hot(t, 3).to(F64)
    close(s.grad, expected)
    assert s.one_hot is not None and torch.equal(s.one_hot, F.one_hot(t, 3).to(F64))
    mean = cross_entropy_stages(z, t)
    close(mean.grad, expected / 2)
    assert mean.denominator.item() == 2.0


@pytest.mark.parametrize("reduction", ["sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(6, 5), (3, 5, 2)], ids=str)
def test_every_target_counted_gives_the_same_numbers_as_with_one_ignored(
    shape, weighted, reduction
):
    """With no target equal to ignore_index the engine skips the masks; the counted positions
    must get exactly the numbers they get when another position is ignored."""
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(shape, generator=gen, dtype=F64) * 4
    t = torch.randint(0, 5, batch_shape(shape), generator=gen)
    w = torch.rand(5, generator=gen, dtype=F64) + 0.5 if weighted else None
    every = cross_entropy_stages(z, t, w, reduction=reduction)
    some = t.clone()
    some[0] = -100  # the first sample (a row, or a row of positions) is ignored
    masked = cross_entropy_stages(z, some, w, reduction=reduction)
    assert every.one_hot is not None and masked.one_hot is not None
    for name in ("one_hot", "target_dist", "per_element_loss", "grad"):
        a, b = getattr(every, name)[1:], getattr(masked, name)[1:]
        assert torch.equal(a, b), name
    expected, grad = reference(z, t, weight=w, reduction=reduction)
    close(every.loss, expected)
    close(every.grad, grad)
    assert every.denominator.dtype == F64
    assert every.denominator.item() == (t.numel() if w is None else w[t].sum().item())
    assert every.warnings == []


def test_tutorial_numbers():
    z = torch.tensor([-1.2, -2.1, 0.6, 2.3, -0.5, 1.4, 0.3, -0.8, -0.3, -1.6], dtype=F64)
    s = cross_entropy_stages(z, torch.tensor(3))
    assert s.max_logit is not None and s.shifted is not None and s.sum_exp is not None
    assert s.max_logit.item() == 2.3 and s.predicted is not None and s.predicted.item() == 3
    assert s.shifted[3].item() == 0.0 and torch.all(s.shifted <= 0)
    close(s.sum_exp, torch.exp(z - 2.3).sum())
    close(s.loss, -torch.log_softmax(z, 0)[3])
    assert s.denominator.item() == 1.0
    assert s.loss.shape == s.per_element_loss.shape == s.max_logit.shape == ()


# --- property-based: random shapes and options ---------------------------------------------------


@st.composite
def cases(draw):
    ndim = draw(st.integers(1, 4))
    C = draw(st.integers(1, 6))
    dims = draw(st.lists(st.integers(1, 3), min_size=ndim - 1, max_size=ndim - 1))
    shape = (C,) if ndim == 1 else (dims[0], C, *dims[1:])
    seed = draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    scale = draw(st.sampled_from([0.1, 1.0, 10.0, 300.0]))
    z = torch.randn(shape, generator=gen, dtype=F64) * scale
    probabilities = draw(st.booleans())
    options = dict(
        reduction=draw(st.sampled_from(["mean", "sum", "none"])),
        label_smoothing=draw(st.sampled_from([0.0, 1.0]) | st.floats(0.0, 1.0)),
    )
    if draw(st.booleans()):
        options["weight"] = torch.rand(C, generator=gen, dtype=F64) * 3
    if probabilities:
        t = torch.rand(shape, generator=gen, dtype=F64)
        t = t / t.sum(class_dim(shape), keepdim=True)
        options["ignore_index"] = draw(st.sampled_from([-100, -1]))
    else:
        ignore_index = draw(st.sampled_from([-100, -1, 0, C - 1, 255]))
        t = torch.randint(0, C, batch_shape(shape), generator=gen)
        hits = torch.rand(t.shape, generator=gen) < draw(st.floats(0, 1))
        t = t.masked_fill(hits, ignore_index)
        options["ignore_index"] = ignore_index
    return z, t, options


@settings(max_examples=80, deadline=None)
@given(cases())
def test_random_cases_match_pytorch(case):
    z, t, options = case
    stages = check_against_pytorch(z, t, **options)
    probabilities = t.is_floating_point()
    all_ignored = not probabilities and bool((t == options["ignore_index"]).all())
    zero_mean = options["reduction"] == "mean" and stages.denominator.item() == 0
    degenerate = not probabilities and (all_ignored or zero_mean)
    odd_ignore = probabilities and options["ignore_index"] != -100
    assert bool(stages.warnings) == (degenerate or odd_ignore)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=8).flatmap(
        lambda row: st.tuples(st.just(row), st.integers(0, len(row) - 1))
    )
)
def test_softmax_is_shift_invariant_and_sums_to_one(case):
    row, target = case
    z = torch.tensor(row, dtype=F64)
    a = cross_entropy_stages(z, torch.tensor(target))
    b = cross_entropy_stages(z + 123.0, torch.tensor(target))
    assert a.softmax is not None
    close(a.softmax.sum(), torch.tensor(1.0, dtype=F64), tol=1e-12)
    close(a.softmax, b.softmax, tol=1e-9)
    close(a.grad, b.grad, tol=1e-9)
    assert a.sum_exp is not None and a.sum_exp.item() >= 1.0


# --- NaN, inf and the warnings that explain them -------------------------------------------------


@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
@pytest.mark.parametrize("weighted", [False, True])
def test_mean_with_every_target_ignored_is_nan_with_zero_grad(weighted, label_smoothing):
    gen = seeded(weighted, label_smoothing)
    z = torch.randn(3, 4, generator=gen, dtype=F64)
    t = torch.full((3,), -100)
    options = dict(weight=torch.rand(4, generator=gen, dtype=F64) if weighted else None)
    stages = check_against_pytorch(z, t, label_smoothing=label_smoothing, **options)
    assert math.isnan(stages.loss.item()) and math.isnan(stages.torch_loss.item())
    assert torch.all(stages.grad == 0)
    assert stages.denominator.item() == 0
    assert stages.warnings == [
        "'mean' divides by 0 because every target equals ignore_index (-100), "
        "so the loss is NaN, as in PyTorch."
    ]
    assert orjson.dumps(stages_to_json(stages, ["loss"])) == b'{"loss":null}'
    summed = cross_entropy_stages(z, t, reduction="sum")
    assert summed.loss.item() == 0.0
    assert summed.warnings == ["Every target equals ignore_index (-100), so the loss is 0."]


@pytest.mark.parametrize("label_smoothing", [0.0, 0.2, 1.0])
@pytest.mark.parametrize("targets", [[0, 1, -100], [2, 3, -100]])
def test_weights_summing_to_zero(targets, label_smoothing):
    """'mean' divides by 0: the gradient is autograd's, NaN and inf alike. With smoothing every
    entry of a counted row is NaN (its upstream gradient holds +inf and -inf, or 0 * inf)."""
    z = torch.randn(3, 4, generator=seeded(targets), dtype=F64)
    t = torch.tensor(targets)
    w = torch.tensor([1.0, -1.0, 0.0, 0.0], dtype=F64)
    stages = cross_entropy_stages(z, t, w, label_smoothing=label_smoothing)
    loss, grad = reference(z, t, weight=w, label_smoothing=label_smoothing)
    close(stages.loss, loss)
    close(stages.grad, grad)
    assert not math.isfinite(stages.loss.item())
    assert stages.grad is not None
    assert not torch.isfinite(stages.grad[:2]).any()
    if label_smoothing > 0:
        assert stages.grad is not None
        assert stages.grad[:2].isnan().all()
    assert stages.grad is not None
    assert torch.all(stages.grad[2] == 0)  # the ignored row
    assert len(stages.warnings) == 1
    assert "the weights of the non-ignored targets sum to 0" in stages.warnings[0]


@pytest.mark.parametrize("label_smoothing", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("weighted", [False, True])
def test_mean_dividing_by_zero_leaves_ignored_rows_as_autograd_does(weighted, label_smoothing):
    """Ignored rows get 0 from autograd, but NaN where the row's softmax is NaN (a NaN or
    infinite logit): log_softmax's backward multiplies it by their upstream gradient, 0."""
    inf, nan = math.inf, math.nan
    z = torch.tensor(
        [[nan, 0.0, 1.0], [inf, 1.0, 2.0], [-inf, -inf, -inf], [0.0, -inf, 1.0], [1.0, 2.0, 3.0]],
        dtype=F64,
    )
    t = torch.full((5,), -100)
    w = torch.tensor([0.5, 1.0, 2.0], dtype=F64) if weighted else None
    stages = check_against_pytorch(z, t, weight=w, label_smoothing=label_smoothing)
    assert stages.grad[:3].isnan().all()
    assert torch.all(stages.grad[3:] == 0)


def test_log_sum_exp_is_torch_logsumexp_on_infinite_rows():
    """A row of -inf, or one with +inf, has log-sum-exp -inf or +inf (torch.logsumexp), even
    though its softmax and log_softmax are NaN, in PyTorch as here."""
    inf, nan = math.inf, math.nan
    z = torch.tensor(
        [[-inf, -inf, -inf], [inf, 1.0, 2.0], [inf, -inf, 0.0], [nan, 0.0, 1.0], [0.0, -inf, 1.0]],
        dtype=F64,
    )
    for reduction in ("none", "sum"):
        stages = check_against_pytorch(z, torch.tensor([0, 1, 2, 0, 2]), reduction=reduction)
        assert stages.log_sum_exp[:3].tolist() == [-inf, inf, inf]
        assert math.isnan(stages.log_sum_exp[3]) and math.isfinite(stages.log_sum_exp[4])
    single = cross_entropy_stages(torch.tensor([-inf, -inf], dtype=F64), torch.tensor(0))
    assert single.log_sum_exp is not None and single.log_sum_exp.item() == -inf


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.1, 1.0])
def test_smoothing_with_weights_whose_sum_overflows(label_smoothing, reduction):
    """Four weights of 1e308 sum to inf, but eps/C times each does not: the gradient stays
    autograd's (to rounding relative to the weights), and the ignored row stays 0."""
    z = torch.randn(3, 4, generator=seeded(label_smoothing, reduction), dtype=F64) * 3
    t = torch.tensor([0, -100, 3])
    w = torch.full((4,), 1e308, dtype=F64)
    stages = cross_entropy_stages(z, t, w, reduction=reduction, label_smoothing=label_smoothing)
    loss, grad = reference(z, t, weight=w, reduction=reduction, label_smoothing=label_smoothing)
    close(stages.loss, loss)
    torch.testing.assert_close(stages.grad, grad, rtol=1e-9, atol=1e308 * 1e-12, equal_nan=True)
    assert stages.grad is not None
    assert torch.isfinite(stages.grad).all()
    assert stages.grad is not None
    assert torch.all(stages.grad[1] == 0)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("probabilities", [False, True])
@pytest.mark.parametrize("shape", [(0, 4), (0, 4, 2)])
def test_empty_batch_mirrors_pytorch(shape, probabilities, reduction):
    z = torch.zeros(shape, dtype=F64)
    t = torch.zeros(shape, dtype=F64) if probabilities else torch.zeros(batch_shape(shape))
    t = t if probabilities else t.long()
    stages = check_against_pytorch(z, t, reduction=reduction, label_smoothing=0.1)
    assert stages.grad.shape == shape
    if reduction == "mean":
        assert math.isnan(stages.loss.item())
        assert "the batch is empty" in stages.warnings[0]
    else:
        assert stages.warnings == []


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("target", [0, 1, 2])
def test_logits_too_far_apart_overflow_like_pytorch(target, label_smoothing):
    z = torch.tensor([[1e308, -1e308, 0.0]], dtype=F64)
    t = torch.tensor([target])
    stages = cross_entropy_stages(z, t, label_smoothing=label_smoothing)
    loss, grad = reference(z, t, label_smoothing=label_smoothing)
    close(stages.loss, loss)
    close(stages.grad, grad)
    close(stages.log_probs, torch.log_softmax(z, 1))
    assert stages.log_probs[0, 1].item() == -math.inf
    assert any("overflows to -inf" in w for w in stages.warnings)


def test_overflowing_logits_with_probability_targets_give_nan_like_pytorch():
    z = torch.tensor([[1e308, -1e308, 0.0]], dtype=F64)
    t = torch.tensor([[1.0, 0.0, 0.0]], dtype=F64)
    stages = check_against_pytorch(z, t)
    assert math.isnan(stages.loss.item()) and math.isnan(stages.torch_loss.item())
    assert any("0 is multiplied by -inf" in w for w in stages.warnings)
    body = orjson.loads(orjson.dumps(stages_to_json(stages), option=orjson.OPT_SERIALIZE_NUMPY))
    assert body["loss"] is None and body["log_probs"][0][1] is None


def test_non_finite_logits_are_carried_through_with_a_warning():
    z = torch.tensor([[math.nan, 1.0], [0.0, math.inf]], dtype=F64)
    t = torch.tensor([0, 1])
    stages = cross_entropy_stages(z, t, reduction="none")
    close(stages.loss, F.cross_entropy(z, t, reduction="none"))
    assert math.isnan(stages.loss[0].item())
    assert stages.warnings[0].startswith("The logits contain NaN or infinite values")


@pytest.mark.parametrize("target", [0, 1])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_a_minus_inf_logit_is_explained_even_when_the_loss_is_finite(target, reduction):
    z = torch.tensor([[0.0, -math.inf, 1.0], [0.5, 0.0, -1.0]], dtype=F64)
    t = torch.tensor([target, 0])
    stages = cross_entropy_stages(z, t, reduction=reduction)
    loss, grad = reference(z, t, reduction=reduction)
    close(stages.loss, loss)
    close(stages.grad, grad)
    assert stages.log_probs[0, 1].item() == -math.inf
    assert bool(torch.isfinite(stages.loss).all()) == (target == 0)
    assert stages.warnings == [
        "The logits contain NaN or infinite values; PyTorch carries them through, so the "
        "stages that depend on them are NaN or infinite too."
    ]


def test_huge_weights_overflow_the_loss_with_a_warning():
    z = torch.tensor([[0.0, 50.0]], dtype=F64)
    t, w = torch.tensor([0]), torch.tensor([1e308, 1.0], dtype=F64)
    stages = cross_entropy_stages(z, t, w)
    assert stages.loss.item() == math.inf == F.cross_entropy(z, t, w).item()
    assert stages.warnings == [
        "The loss is +inf: it overflows float64 (the weights or logits are too large)."
    ]


def test_probabilities_that_do_not_sum_to_one_warn():
    z = torch.zeros(3, 3, dtype=F64)
    t = torch.tensor([[1.0, 0, 0], [0.333, 0.333, 0.333], [0.5, 0.0, 0.0]], dtype=F64)
    stages = check_against_pytorch(z, t)
    assert stages.warnings == [
        "The target probabilities at 2 of 3 positions do not sum to 1 (at [1] they sum to "
        "0.999); PyTorch uses them as given."
    ]
    ok = torch.tensor([[0.2, 0.3, 0.5]] * 3, dtype=F64)
    assert cross_entropy_stages(z, ok).warnings == []


def test_a_single_distribution_that_does_not_sum_to_one_names_no_position():
    stages = check_against_pytorch(torch.zeros(3, dtype=F64), torch.tensor([0.5, 0.2, 0.2]))
    assert stages.warnings == [
        "The target probabilities sum to 0.9, not 1; PyTorch uses them as given."
    ]


def test_accepted_dtypes_are_converted_to_float64_and_int64():
    z = torch.tensor([[1, 2, 3], [3, 2, 1]])  # integer logits, as a JSON array of ints arrives
    for t in (torch.tensor([0, 2], dtype=dtype) for dtype in (torch.uint8, torch.int32)):
        stages = cross_entropy_stages(z, t, torch.tensor([1, 2, 3]))
        assert stages.grad is not None
        assert stages.logits.dtype == F64 and stages.grad.dtype == F64
        close(
            stages.loss, F.cross_entropy(z.double(), t.long(), torch.tensor([1.0, 2, 3], dtype=F64))
        )
    stages = cross_entropy_stages(z.float(), torch.tensor([[0.5, 0.5, 0], [0, 0, 1]]))
    assert stages.target_dist is not None and stages.target_dist.dtype == F64


def test_inputs_are_left_alone_and_need_no_grad():
    gen = seeded("left alone")
    z = torch.randn(4, 3, generator=gen, dtype=F64, requires_grad=True)
    before = z.detach().clone()
    stages = cross_entropy_stages(z, torch.tensor([0, 1, 2, 0]))
    assert stages.grad is not None
    assert not stages.grad.requires_grad and not stages.loss.requires_grad
    assert torch.equal(z.detach(), before) and z.grad is None
    w = torch.rand(3, generator=gen, dtype=F64, requires_grad=True)
    probabilities = torch.rand(4, 3, generator=gen, dtype=F64, requires_grad=True)
    for target in (torch.tensor([0, 1, 2, 0]), probabilities):
        for smoothing in (0.0, 0.1):
            stages = cross_entropy_stages(z, target, w, label_smoothing=smoothing)
            for name in STAGES:
                value = getattr(stages, name)
                assert not isinstance(value, torch.Tensor) or not value.requires_grad, name
    assert z.grad is None and w.grad is None


# --- the JSON view -------------------------------------------------------------------------------


def test_stage_names_are_the_api_contract():
    assert STAGES == (
        "logits", "max_logit", "shifted", "exp", "sum_exp", "log_sum_exp", "softmax",
        "log_probs", "one_hot", "target_dist", "per_element_loss", "loss", "grad",
        "predicted", "denominator", "torch_loss", "warnings", "warning_codes",
    )  # fmt: skip
    assert set(Stages.__dataclass_fields__) == set(STAGES)


def test_stages_to_json_types_and_orjson():
    z = torch.randn(2, 3, 4, generator=seeded("json"), dtype=F64)
    stages = cross_entropy_stages(z, torch.tensor([[0, 1, 2, 1], [2, 2, 0, -100]]))
    out = stages_to_json(stages)
    assert list(out) == list(STAGES)
    for name in ("logits", "shifted", "grad", "one_hot", "per_element_loss"):
        # small arrays as lists of Python floats (cheaper than a first .numpy() of a tensor)
        assert out[name] == getattr(stages, name).tolist()
        assert type(np.array(out[name]).flat[0].item()) is float
    assert type(out["predicted"][0][0]) is int
    for name in ("loss", "denominator", "torch_loss"):
        assert type(out[name]) is float
    assert out["warnings"] == []
    body = orjson.loads(orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY))
    assert body["denominator"] == 7.0
    assert stages.grad is not None
    assert np.allclose(np.array(body["grad"]), stages.grad.numpy())
    assert body["one_hot"][1][0][3] == 0.0
    z = torch.randn(13, 10, dtype=F64)
    big = stages_to_json(cross_entropy_stages(z, torch.arange(13) % 10))
    for name in ("logits", "shifted", "grad", "one_hot", "per_element_loss"):
        assert isinstance(big[name], np.ndarray) == (name != "per_element_loss")
    assert big["grad"].dtype == np.float64 and big["grad"].flags.c_contiguous
    assert type(big["per_element_loss"][0]) is float  # 13 values: a list


def test_stages_to_json_copies_views_and_detaches():
    z = torch.randn(40, 4, generator=seeded("views"), dtype=F64)  # over LIST_VALUES: numpy
    stages = cross_entropy_stages(z, torch.arange(40) % 4)
    grad = stages.grad
    assert grad is not None
    stages.grad = grad.t().contiguous().t()  # the same values, column-major
    stages.logits = stages.logits.clone().requires_grad_()
    assert not stages.grad.is_contiguous()
    out = stages_to_json(stages, ["logits", "grad"])
    assert out["grad"].flags.c_contiguous and np.array_equal(out["grad"], grad.numpy())
    assert np.array_equal(out["logits"], stages.logits.detach().numpy())


def test_stages_to_json_for_a_single_sample_and_probabilities():
    stages = cross_entropy_stages(torch.tensor([1.0, 2.0, 0.5]), torch.tensor([0.2, 0.8, 0.0]))
    out = stages_to_json(stages)
    assert out["one_hot"] is None
    assert type(out["predicted"]) is int and out["predicted"] == 1
    assert type(out["max_logit"]) is float and out["max_logit"] == 2.0
    assert stages.grad is not None
    assert type(out["loss"]) is float and out["grad"] == stages.grad.tolist()
    none = stages_to_json(cross_entropy_stages(torch.zeros(3), torch.tensor(1), reduction="none"))
    assert none["loss"] == math.log(3)


def test_stages_to_json_fields():
    stages = cross_entropy_stages(torch.zeros(3, 10, dtype=F64), torch.tensor([0, 1, 2]))
    assert list(stages_to_json(stages, ["grad", "loss"])) == ["loss", "grad"]
    assert list(stages_to_json(stages, "loss")) == ["loss"]
    assert stages_to_json(stages, []) == {}
    with pytest.raises(InputError, match="unknown fields 'nope', 'grads'; choose from logits"):
        stages_to_json(stages, ["loss", "nope", "grads"])


def test_non_finite_values_become_null():
    stages = cross_entropy_stages(torch.zeros(2, 2, dtype=F64), torch.tensor([-100, -100]))
    out = stages_to_json(stages)
    assert math.isnan(out["loss"]) and math.isnan(out["torch_loss"])  # NaN: the .npz keeps it
    body = orjson.loads(orjson.dumps(out))
    assert body["loss"] is None and body["torch_loss"] is None
    nan = cross_entropy_stages(torch.zeros(2), torch.tensor(0))
    assert nan.grad is not None
    nan.grad[0] = math.nan
    assert nan.grad is not None
    nan.grad[1] = -math.inf
    assert orjson.dumps(stages_to_json(nan, ["grad"]), option=orjson.OPT_SERIALIZE_NUMPY) == (
        b'{"grad":[null,null]}'
    )


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_a_large_batch_matches_autograd(label_smoothing):
    """20,000 rows with weights: loss and gradient against an independent F.cross_entropy and
    autograd run (how the time grows with the batch is measured in bench/, not here)."""
    gen = seeded("large", label_smoothing)
    z = torch.randn(20_000, 10, generator=gen, dtype=F64) * 3
    t = torch.randint(0, 10, (20_000,), generator=gen)
    w = torch.rand(10, generator=gen, dtype=F64) + 0.1
    stages = cross_entropy_stages(z, t, w, label_smoothing=label_smoothing)
    loss, grad = reference(z, t, weight=w, label_smoothing=label_smoothing)
    exact(stages.loss, loss)
    close(stages.grad, grad)
    exact(
        stages.per_element_loss,
        reference(z, t, weight=w, reduction="none", label_smoothing=label_smoothing)[0],
    )


@pytest.mark.parametrize(
    "shape", [(1,), (16,), (17,), (257,), (4097,), (3, 40), (2, 3, 50)], ids=str
)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_sums_add_in_the_order_nll_loss_adds(shape, weighted, reduction, label_smoothing):
    """nll_loss adds a batch's losses and weights in a cascade of partial sums, one per block of
    16 positions (16 * 16, ...), skipping ignored positions without closing their block; the
    engine's loss is PyTorch's bit for bit past the first blocks too, with a third of the
    targets ignored, every multiple of 16 among them. (torch.sum adds in another order: on an
    AVX2 CPU that differed in the last bits.)"""
    gen = seeded("cascade", shape, weighted, reduction, label_smoothing)
    batch = (shape[0], *shape[1:])
    z = torch.randn(batch[0], 7, *batch[1:], generator=gen, dtype=F64) * 4
    t = torch.randint(0, 7, batch, generator=gen)
    t = t.masked_fill(torch.rand(batch, generator=gen) < 0.33, -100)
    t.view(-1)[::16] = -100
    t.view(-1)[-1] = 2  # and one counted position at least
    w = torch.rand(7, generator=gen, dtype=F64) * 3 if weighted else None
    options = {"weight": w, "reduction": reduction, "label_smoothing": label_smoothing}
    stages = cross_entropy_stages(z, t, **options)
    exact(stages.loss, F.cross_entropy(z, t, **options))
