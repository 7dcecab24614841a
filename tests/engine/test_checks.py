"""What the engine rejects, and the sentence it says (the whole sentence: it is what a learner
reads, and what the web layer sends back as `detail`)."""

import math
import re

import pytest
import torch
import torch.nn.functional as F

from app.engine import InputError, cross_entropy_stages

F64 = torch.float64
Z = torch.zeros(3, 10, dtype=F64)
T = torch.tensor([0, 1, 2])
RANGE = "is out of range for 10 classes (indices run from 0 to 9; ignore_index is -100)"


def probabilities(*row: float) -> torch.Tensor:
    return torch.tensor([[*row] + [0.1] * (10 - len(row))] * 3, dtype=F64)


@pytest.mark.parametrize(
    ("logits", "target", "options", "message"),
    [
        ([1.0], T, {}, "logits must be a tensor."),
        (Z, [0, 1, 2], {}, "target must be a tensor."),
        (Z, T, {"weight": [1.0] * 10}, "weight must be a tensor."),
        (
            torch.tensor(1.0),
            torch.tensor(0),
            {},
            "logits need at least one dimension, the classes: shape (C), (N, C) or "
            "(N, C, d1, ..., dK); got a single number.",
        ),
        (
            torch.zeros(3, 0),
            T,
            {},
            "logits of shape (3, 0) have no classes (dimension 1 is empty).",
        ),
        (
            torch.zeros(0),
            torch.tensor(0),
            {},
            "logits of shape (0) have no classes (dimension 0 is empty).",
        ),
        (torch.zeros(3, 10, dtype=torch.bool), T, {}, "logits must be real numbers, not bool."),
        (
            torch.zeros(3, 10, dtype=torch.complex64),
            T,
            {},
            "logits must be real numbers, not complex64.",
        ),
        (
            Z,
            torch.tensor([0, 1]),
            {},
            "target of shape (2) fits neither class indices (shape (3)) nor class probabilities "
            "(shape (3, 10)) for logits of shape (3, 10).",
        ),
        (
            torch.zeros(2, 3, 4, dtype=F64),
            torch.zeros(2, 3, 4, dtype=torch.long),
            {},
            "target has the same shape as logits, (2, 3, 4), so it is read as class probabilities, "
            "which must be floating-point numbers, not int64: write them with a decimal point "
            "(1.0), or give class indices of shape (2, 4).",
        ),
        (
            Z,
            torch.tensor([0.0, 1.0, 2.0]),
            {},
            "target of shape (3) holds class indices, which must be integers, not float32 (such as "
            "0.0); for class probabilities give shape (3, 10).",
        ),
        (
            torch.zeros(0, 10),
            torch.zeros(0),
            {},
            "target of shape (0) holds class indices, which must be integers, not float32; for "
            "class probabilities give shape (0, 10).",
        ),
        (
            Z,
            torch.tensor([True, False, True]),
            {},
            "target of shape (3) holds class indices, which must be integers, not bool (such as "
            "True); for class probabilities give shape (3, 10).",
        ),
        (
            Z[0],
            torch.tensor(3.0),
            {},
            "target 3.0 is a class index, which must be an integer, not float32; for class "
            "probabilities give shape (10).",
        ),
        (Z, torch.tensor([0, 12, 3]), {}, f"target 12 at [1] {RANGE}."),
        (Z, torch.tensor([0, -1, 3]), {}, f"target -1 at [1] {RANGE}."),
        (Z, torch.tensor([10, 11, 3]), {}, f"target 10 at [0] {RANGE}, and 1 more target is too."),
        (
            Z,
            torch.tensor([10, 11, 12]),
            {},
            f"target 10 at [0] {RANGE}, and 2 more targets are too.",
        ),
        (Z[0], torch.tensor(10), {}, f"target 10 {RANGE}."),
        (
            Z,
            torch.full((3, 10), -0.1, dtype=F64),
            {},
            "target probabilities cannot be negative; found -0.1 at [0, 0].",
        ),
        (
            Z,
            probabilities(0.0, -0.5),
            {},
            "target probabilities cannot be negative; found -0.5 at [0, 1].",
        ),
        (
            Z,
            probabilities(0.5, -0.5),
            {},
            "target probabilities cannot be negative; found -0.5 at [0, 1].",
        ),
        (
            Z,
            torch.full((3, 10), math.nan, dtype=F64),
            {},
            "target probabilities must be finite; found nan at [0, 0].",
        ),
        (
            Z,
            probabilities(0.5, math.inf),
            {},
            "target probabilities must be finite; found inf at [0, 1].",
        ),
        (
            Z,
            torch.full((3, 10), 0.1, dtype=F64),
            {"ignore_index": 0},
            "ignore_index 0 cannot be used with class-probability targets: PyTorch accepts only a "
            "negative ignore_index there (and ignores it).",
        ),
        (
            Z,
            T,
            {"weight": torch.ones(9)},
            "weight must be a list of 10 numbers, one per class; got shape (9).",
        ),
        (
            Z,
            T,
            {"weight": torch.ones(1, 10)},
            "weight must be a list of 10 numbers, one per class; got shape (1, 10).",
        ),
        (
            Z,
            T,
            {"weight": torch.tensor([1.0] * 9 + [math.inf])},
            "weight must be finite; found inf at [9].",
        ),
        (
            Z,
            T,
            {"weight": torch.ones(10, dtype=torch.bool)},
            "weight must be real numbers, not bool.",
        ),
        (
            Z,
            T,
            {"weight": torch.ones(10, dtype=torch.complex64)},
            "weight must be real numbers, not complex64.",
        ),
        (Z, T, {"label_smoothing": -0.1}, "label_smoothing must be between 0 and 1, not -0.1."),
        (Z, T, {"label_smoothing": 1.5}, "label_smoothing must be between 0 and 1, not 1.5."),
        (Z, T, {"label_smoothing": math.nan}, "label_smoothing must be between 0 and 1, not nan."),
        (Z, T, {"label_smoothing": True}, "label_smoothing must be a number, not True."),
        (Z, T, {"label_smoothing": "0.1"}, "label_smoothing must be a number, not '0.1'."),
        (Z, T, {"reduction": "avg"}, "reduction must be 'mean', 'sum' or 'none', not 'avg'."),
        (Z, T, {"ignore_index": 1.5}, "ignore_index must be an integer, not 1.5."),
        (Z, T, {"ignore_index": True}, "ignore_index must be an integer, not True."),
        (
            Z,
            T,
            {"ignore_index": 2**63},
            "ignore_index 9223372036854775808 does not fit in a 64-bit integer.",
        ),
        (
            Z,
            T,
            {"ignore_index": -(2**63) - 1},
            "ignore_index -9223372036854775809 does not fit in a 64-bit integer.",
        ),
    ],
)
def test_rejections(logits, target, options, message):
    with pytest.raises(InputError) as info:
        cross_entropy_stages(logits, target, **options)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)
    # each refusal has a code of its own, for a client that says it in its own language
    assert info.value.status == 422 and info.value.code != "invalid_input"
    assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", info.value.code), info.value.code


@pytest.mark.parametrize("ignore_index", [2**63 - 1, -(2**63)])
def test_ignore_index_at_the_ends_of_int64_is_accepted(ignore_index):
    z = torch.randn(3, 10, generator=torch.Generator().manual_seed(0), dtype=F64)
    stages = cross_entropy_stages(z, T, ignore_index=ignore_index)
    assert stages.loss.item() == F.cross_entropy(z, T, ignore_index=ignore_index).item()


@pytest.mark.parametrize(
    "function, options",
    [
        ("nll_loss", {}),  # class indices: nll_loss on the log_softmax, as F.cross_entropy runs
        ("cross_entropy", {"label_smoothing": 0.1}),
    ],
)
def test_anything_pytorch_still_rejects_becomes_an_input_error(monkeypatch, function, options):
    """The checks come first; PyTorch's loss runs after them and would catch what they miss."""

    def rejects(*args, **kwargs):
        raise RuntimeError("something the checks missed")

    monkeypatch.setattr(f"app.engine.loss.F.{function}", rejects)
    with pytest.raises(InputError) as info:
        cross_entropy_stages(Z, T, **options)
    assert str(info.value) == "PyTorch rejected this input: something the checks missed"
    assert info.value.code == "pytorch_rejected"
    assert info.value.params == {"error": "something the checks missed"}
    assert isinstance(info.value.__cause__, RuntimeError)


def test_input_error_carries_a_code_and_the_values_in_its_sentence():
    plain = InputError("Something is wrong.")
    assert str(plain) == "Something is wrong." and plain.status == 422
    assert plain.code == "invalid_input" and plain.params == {}
    named = InputError("Too many: 5.", code="too_many", count=5)
    assert named.code == "too_many" and named.params == {"count": 5}
    assert InputError.code == "invalid_input"  # the class default is left alone
