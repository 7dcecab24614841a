"""JSON values (nested lists of numbers, as orjson parses them) to validated tensors."""

import itertools
import math
import numbers
from typing import Any, NoReturn

import numpy as np
import torch

from app.engine import InputError
from app.engine.text import shape_text

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
NESTED = (list, tuple)
PLAIN_NUMBERS = frozenset({int, float})  # what JSON numbers parse to: known numbers, no bool
JUST_LISTS = frozenset({list})  # what JSON arrays parse to
# Up to this many values, the float checks are Python's (math.isfinite), not numpy's: numpy's
# ufunc machinery, 1.5 us in a loop, cost a small /loss request 10-20 us inside the request,
# where its code and the engine's that follows take turns in the caches (to_tensor on 8 x 10
# logits then the engine: 77 us with np.isfinite, 56 us without, timeit on the development
# machine); math.isfinite takes about 25 ns a value.
PYTHON_CHECKED_VALUES = 256


class ArrayError(InputError):
    """A JSON array that cannot become a tensor; str(e) names the field and says what is wrong."""


def to_tensor(
    value: Any, name: str, *, max_values: int, max_dims: int, integer: bool | None = None
) -> torch.Tensor:
    """A nested list (or a bare number) -> a tensor: int64 if every value is an integer,
    float64 otherwise. integer=True demands integers, integer=False always gives float64.

    The walk goes one nesting level at a time with C-level builtins (map, chain), so it is
    fast for a million values, never recurses, and checks shape and size before the values
    are converted.
    """
    shape: list[int] = []
    level: list[Any] = [value]  # every node at the current depth, in row-major order
    while True:
        kinds = set(map(type, level))
        if kinds <= PLAIN_NUMBERS:
            break  # these are the values (the usual case, told apart without issubclass)
        if kinds != JUST_LISTS:  # (the usual case of lists, likewise)
            lists = {k for k in kinds if issubclass(k, NESTED)}
            if not lists:
                break  # these are the values
            if lists != kinds:
                _mixed(level, shape, name)
        lengths = set(map(len, level))
        if len(lengths) > 1:
            _ragged(level, shape, name)
        (length,) = lengths
        shape.append(length)
        if len(shape) > max_dims:
            raise ArrayError(
                f"{name}: too deeply nested: more than {max_dims} dimension"
                f"{'s' if max_dims != 1 else ''} (the limit)",
                code="array_too_deep",
                name=name,
                limit=max_dims,
            )
        if length == 0:
            raise ArrayError(
                f"{name}: empty array (shape {shape_text(shape)}); every dimension needs at least "
                "one value",
                code="array_empty",
                name=name,
                shape=shape_text(shape),
            )
        count = math.prod(shape)  # a lower bound until the last level
        if count > max_values:
            raise ArrayError(
                f"{name}: too many values: at least {count:,} (the limit is {max_values:,})",
                code="array_too_large",
                name=name,
                count=count,
                limit=max_values,
            )
        level = list(itertools.chain.from_iterable(level))

    # `level` now holds the values, in row-major order, and `kinds` their types
    if kinds <= PLAIN_NUMBERS:
        floats = float in kinds
    else:
        floats = False
        for kind in kinds:
            if not _is_number_type(kind):
                _not_number(level, shape, name, kind)
            if not issubclass(kind, numbers.Integral):
                floats = True
    if floats and integer:
        first = next(i for i, v in enumerate(level) if not isinstance(v, numbers.Integral))
        raise ArrayError(
            f"{name}: expected integers, got {level[first]!r} at {_where(first, shape)}",
            code="array_not_integer",
            name=name,
            value=repr(level[first]),
            position=_where(first, shape),
        )

    if floats:
        try:
            # fromiter: the same conversion as np.array, without its search for nested sequences
            array = np.fromiter(level, dtype=np.float64, count=len(level))
        except OverflowError:  # an integer beyond float64's range
            _too_big(level, shape, name)
        small = len(level) <= PYTHON_CHECKED_VALUES
        if not (all(map(math.isfinite, level)) if small else np.isfinite(array).all()):
            first = int(np.flatnonzero(~np.isfinite(array))[0])
            where = f" at {_where(first, shape)}" if shape else ""
            raise ArrayError(
                f"{name} contains a non-finite value ({array[first]}){where}",
                code="array_not_finite",
                name=name,
                value=str(array[first]),
                position=_where(first, shape),
            )
        # ints beyond int64 are rejected here too; for many values, a cheap test guards the
        # slow one (>= 2**63: 2**63 itself, as float64, is INT64_MAX rounded up)
        maybe_too_big = int in kinds and (small or np.abs(array).max() >= 2.0**63)
        if maybe_too_big and _first_too_big(level) is not None:
            _too_big(level, shape, name)
    else:
        try:
            array = np.fromiter(level, dtype=np.int64, count=len(level))
        except OverflowError:
            _too_big(level, shape, name)
        if integer is False:
            array = array.astype(np.float64)
    return torch.from_numpy(array.reshape(shape))


def _where(flat: int, shape: list[int]) -> str:
    """The position, as [i, j, ...], of item `flat` of a level of nodes of the given shape."""
    if not shape:
        return "the top level"
    return "[" + ", ".join(str(int(i)) for i in np.unravel_index(flat, shape)) + "]"


def _mixed(level: list[Any], shape: list[int], name: str) -> NoReturn:
    first_list = next(i for i, v in enumerate(level) if isinstance(v, NESTED))
    first_other = next(i for i, v in enumerate(level) if not isinstance(v, NESTED))
    if not _is_number(level[first_other]):
        _not_number(level, shape, name, type(level[first_other]))
    raise ArrayError(
        f"{name}: ragged array: {_where(first_other, shape)} is "
        f"{_describe(level[first_other])} but {_where(first_list, shape)} is a list",
        code="array_ragged",
        name=name,
        position=_where(first_other, shape),
    )


def _ragged(level: list[Any], shape: list[int], name: str) -> NoReturn:
    expected = len(level[0])
    first = next(i for i, v in enumerate(level) if len(v) != expected)
    raise ArrayError(
        f"{name}: ragged array: {_row(first, shape)} has {len(level[first])} values, "
        f"expected {expected} like {_row(0, shape)}",
        code="array_ragged",
        name=name,
        position=_where(first, shape),
    )


def _row(flat: int, shape: list[int]) -> str:
    if len(shape) == 1:
        return f"row {flat}"
    return f"the list at {_where(flat, shape)}"


def _is_number_type(kind: type) -> bool:
    """int and float (and numpy's number types), but not bool, which JSON keeps apart."""
    return issubclass(kind, numbers.Real) and not issubclass(kind, bool | np.bool_)


def _is_number(v: Any) -> bool:
    return _is_number_type(type(v))


def _not_number(level: list[Any], shape: list[int], name: str, kind: type) -> NoReturn:
    first = next(i for i, v in enumerate(level) if type(v) is kind)
    raise ArrayError(
        f"{name}: expected numbers, got {_describe(level[first])} at {_where(first, shape)}",
        code="array_not_number",
        name=name,
        value=_describe(level[first]),
        position=_where(first, shape),
    )


def _first_too_big(level: list[Any]) -> int | None:
    """The index of the first integer that does not fit in int64, if any."""
    for i, v in enumerate(level):
        if isinstance(v, numbers.Integral) and not INT64_MIN <= int(v) <= INT64_MAX:
            return i
    return None


def _too_big(level: list[Any], shape: list[int], name: str) -> NoReturn:
    first = _first_too_big(level)
    assert first is not None
    raise ArrayError(
        f"{name}: the integer at {_where(first, shape)} does not fit in 64 bits "
        f"(they run from {INT64_MIN} to {INT64_MAX})",
        code="array_integer_too_large",
        name=name,
        position=_where(first, shape),
    )


def _describe(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool | np.bool_):
        return "true" if v else "false"
    if isinstance(v, str):
        shown = v if len(v) <= 20 else v[:20] + "..."
        return f"a string ({shown!r})"
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, NESTED):
        return "a list"
    if _is_number(v):
        return f"a number ({v})"
    return f"a {type(v).__name__}"
