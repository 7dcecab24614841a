"""JSON values to tensors: the happy paths and every rejection."""

import math
import time

import numpy as np
import orjson
import pytest
import torch

from app.web.arrays import PYTHON_CHECKED_VALUES, ArrayError, to_tensor
from tests.conftest import HANG_GUARD_S

CAPS = {"max_values": 1_000_000, "max_dims": 8}


def convert(value, name="logits", **options):
    return to_tensor(value, name, **{**CAPS, **options})


def rejects(value, message, name="logits", **options):
    with pytest.raises(ArrayError) as info:
        convert(value, name, **options)
    assert str(info.value).startswith(name), str(info.value)
    assert message in str(info.value), str(info.value)
    assert isinstance(info.value, ValueError)


# --- happy paths ---------------------------------------------------------------------------------


def test_floats_give_float64():
    t = convert([[1.5, -2.0], [0.0, 3.25]])
    assert t.dtype == torch.float64 and t.shape == (2, 2)
    assert t.tolist() == [[1.5, -2.0], [0.0, 3.25]]


def test_ints_give_int64_so_float_indices_can_be_told_apart():
    t = convert([3, 0, 7], "target")
    assert t.dtype == torch.int64 and t.tolist() == [3, 0, 7]
    assert convert([3.0, 0.0], "target").dtype == torch.float64


def test_mixed_ints_and_floats_give_float64():
    t = convert([[1, 2.5], [3, 4]])
    assert t.dtype == torch.float64 and t.tolist() == [[1.0, 2.5], [3.0, 4.0]]


def test_bare_numbers_give_0d_tensors():
    t = convert(3, "target")
    assert t.shape == () and t.dtype == torch.int64 and t.item() == 3
    f = convert(-0.5)
    assert f.shape == () and f.dtype == torch.float64 and f.item() == -0.5


def test_integer_option():
    assert convert([1, 2], integer=True).dtype == torch.int64
    assert convert([1, 2], integer=False).dtype == torch.float64
    assert convert([1.5, 2], integer=False).dtype == torch.float64
    assert convert(4, integer=False).tolist() == 4.0


def test_numpy_scalars_are_numbers_and_numpy_bools_are_not():
    t = convert([np.float32(1.5), np.int64(2), 0.25])
    assert t.dtype == torch.float64 and t.tolist() == [1.5, 2.0, 0.25]
    assert convert([np.int64(3), 1], "target").dtype == torch.int64
    rejects([1.5, np.bool_(True)], "expected numbers, got true at [1]")
    rejects([np.array(1.5)], "expected numbers, got a ndarray at [0]")


def test_large_integers_convert_exactly():
    big = 2**62 + 1  # not a float64: ints alone stay exact, beside a float they round as float()
    assert convert([big, 0], "target").tolist() == [big, 0]
    assert convert([big, 0.5]).tolist() == [float(big), 0.5]
    assert convert([big], integer=False).tolist() == [float(big)]


def test_deep_but_allowed_and_tuples():
    value = [[[[[1.0, 2.0]]]]]
    assert convert(value, max_dims=5).shape == (1, 1, 1, 1, 2)
    assert convert(((1, 2), (3, 4))).shape == (2, 2)


def test_int64_limits_are_accepted():
    t = convert([-(2**63), 2**63 - 1], "target")
    assert t.tolist() == [-(2**63), 2**63 - 1]


def test_values_from_orjson_round_trip_exactly():
    a = np.random.default_rng(0).standard_normal((50, 7, 3))
    t = convert(orjson.loads(orjson.dumps(a, option=orjson.OPT_SERIALIZE_NUMPY)))
    assert torch.equal(t, torch.from_numpy(a))


def test_a_million_values():
    """About 0.03 s on a laptop (torch.tensor(value) takes about 0.1 s); only a hang fails here."""
    a = np.random.default_rng(0).standard_normal((100_000, 10))
    value = orjson.loads(orjson.dumps(a, option=orjson.OPT_SERIALIZE_NUMPY))
    start = time.perf_counter()
    t = convert(value)
    assert time.perf_counter() - start < HANG_GUARD_S
    assert torch.equal(t, torch.from_numpy(a))


# --- rejections ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "expected numbers, got true at the top level"),
        ([1.0, False], "expected numbers, got false at [1]"),
        ([[1, 2], [3, True]], "expected numbers, got true at [1, 1]"),
        ([[1.0, "2"]], "expected numbers, got a string ('2') at [0, 1]"),
        ([1.0, None], "expected numbers, got null at [1]"),
        ([{"a": 1}], "expected numbers, got an object at [0]"),
        ("1, 2, 3", "expected numbers, got a string"),
        (None, "expected numbers, got null at the top level"),
    ],
)
def test_non_numbers(value, message):
    rejects(value, message)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "empty array (shape (0))"),
        ([[]], "empty array (shape (1, 0))"),
        ([[], []], "empty array (shape (2, 0))"),
        ([[[]]], "empty array (shape (1, 1, 0))"),
    ],
)
def test_empty(value, message):
    rejects(value, message)


def test_ragged_rows_say_where():
    rows = [[0.0] * 10, [0.0] * 10, [0.0] * 9, [0.0] * 10]
    rejects(rows, "logits: ragged array: row 2 has 9 values, expected 10 like row 0")
    deeper = [[[1, 2], [3, 4]], [[5, 6], [7]]]
    rejects(deeper, "ragged array: the list at [1, 1] has 1 values, expected 2")
    rejects([[1, 2], 3], "ragged array: [1] is a number (3) but [0] is a list")
    rejects([1, [2, 3]], "ragged array: [0] is a number (1) but [1] is a list")


def test_too_many_dims():
    rejects([[[1.0]]], "too deeply nested: more than 2 dimensions (the limit)", max_dims=2)
    rejects([1.0], "more than 0 dimensions", max_dims=0)


class Unread(list):
    """A list whose items must never be read: the value is refused before they would be."""

    def __iter__(self):
        raise AssertionError("read the items of a list past the point of refusal")


def test_very_deep_nesting_is_refused_at_the_dimension_cap():
    """100,000 levels deep: refused at level 9 (max_dims 8), nothing below it read."""
    value: list = [1.0]
    for _ in range(100_000):
        value = [value]
    value = Unread([value])
    for _ in range(CAPS["max_dims"] + 1):
        value = [value]
    rejects(value, "too deeply nested: more than 8 dimensions")


def test_too_many_values_is_caught_before_the_values_are_read():
    row = Unread([0.0] * 1000)
    big = [row] * 2000  # 2,000,000 values sharing one row
    rejects(big, "too many values: at least 2,000,000 (the limit is 1,000,000)")
    rejects([1, 2, 3], "too many values: at least 3 (the limit is 2)", max_values=2)
    assert convert([1, 2], max_values=2).shape == (2,)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([1.0, math.nan], "logits contains a non-finite value (nan) at [1]"),
        ([[0.0] * 8] * 3 + [[0.0] * 7 + [math.inf]], "non-finite value (inf) at [3, 7]"),
        ([[1, -math.inf]], "non-finite value (-inf) at [0, 1]"),
        (math.inf, "logits contains a non-finite value (inf)"),
        ([2.0, math.inf, -math.inf], "non-finite value (inf) at [1]"),
        ([1.7e308, 1.7e308, -math.inf], "non-finite value (-inf) at [2]"),
        # past PYTHON_CHECKED_VALUES, numpy checks them
        ([0.0] * PYTHON_CHECKED_VALUES + [math.nan], f"(nan) at [{PYTHON_CHECKED_VALUES}]"),
        ([[0.5] * 64] * 5 + [[0.5] * 63 + [math.inf]], "non-finite value (inf) at [5, 63]"),
        ([math.inf] + [0.0] * PYTHON_CHECKED_VALUES, "non-finite value (inf) at [0]"),
    ],
)
def test_non_finite(value, message):
    rejects(value, message)


def test_finite_values_whose_sum_overflows_are_finite():
    values = [[1.7e308, 1.7e308], [-1.7e308, -1.7e308]]
    assert convert(values).tolist() == values


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([1, 2**63], "the integer at [1] does not fit in 64 bits"),
        ([[-(2**63) - 1]], "the integer at [0, 0] does not fit in 64 bits"),
        ([1.5, 2**70], "the integer at [1] does not fit in 64 bits"),
        ([1.5, 10**400], "the integer at [1] does not fit in 64 bits"),
        (2**64, "the integer at the top level does not fit in 64 bits"),
        ([1.5] * PYTHON_CHECKED_VALUES + [2**70], f"integer at [{PYTHON_CHECKED_VALUES}] does not"),
        ([1.5] * 4 + [-(2**63) - 1], "the integer at [4] does not fit in 64 bits"),
        ([2**63] + [1.5] * PYTHON_CHECKED_VALUES, "the integer at [0] does not fit in 64 bits"),
    ],
)
def test_integers_beyond_int64(value, message):
    rejects(value, message, name="target")


def test_integer_option_rejects_floats():
    rejects([0, 1.5, 2], "target: expected integers, got 1.5 at [1]", name="target", integer=True)


def test_orjson_input_that_the_parser_already_limits():
    # orjson turns integers beyond 64 bits into floats and refuses 1e400, so these come from code
    assert orjson.loads(b"[1, 18446744073709551615]")[1] == 2**64 - 1
    rejects(orjson.loads(b"[1, 18446744073709551615]"), "does not fit in 64 bits")


def test_non_numbers_beside_lists_are_named():
    rejects([[1, 2], "x"], "expected numbers, got a string ('x') at [1]")
    rejects([[1, 2], None], "expected numbers, got null at [1]")
    rejects([[1, 2], [True, 3]], "expected numbers, got true at [1, 0]")
