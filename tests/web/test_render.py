"""Big answers are written a piece at a time, and come out as orjson writes them in one go."""

import numpy as np
import orjson
import pytest

from app.web import serialize
from app.web.serialize import OPTIONS, OrjsonResponse

PIECE = serialize.PIECE_VALUES


@pytest.mark.parametrize(
    "shape",
    [(PIECE + 1,), (3 * PIECE,), (1, 2 * PIECE), (3, 1, PIECE + 5), (2 * PIECE, 3), (PIECE, 2),
     (1, 1, 1, PIECE + 1), (PIECE + 1, 0), (7, 5)],
)  # fmt: skip
def test_pieces_make_the_same_bytes_as_one_call(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(len(shape))
    values = rng.standard_normal(shape) * 10.0 ** rng.integers(-30, 30, shape)
    values.flat[::7] = np.nan  # null in the JSON
    values.flat[::11] = -np.inf
    content = {"a": values, "b": [1, "x", None], "c": np.arange(5), "d": 1.5, "e": values.T.copy()}
    assert OrjsonResponse(content).body == orjson.dumps(content, option=OPTIONS)


def test_big_arrays_are_written_in_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """No single call to orjson writes more than PIECE_VALUES numbers of an array."""
    sizes: list[int] = []
    real = orjson.dumps

    def spy(value: object, *args: object, **kwargs: object) -> bytes:
        sizes.append(value.size if isinstance(value, np.ndarray) else 0)
        return real(value, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(serialize.orjson, "dumps", spy)
    OrjsonResponse({"logits": np.zeros((PIECE + 3, 10)), "loss": 1.0})
    assert max(sizes) <= PIECE and sum(sizes) == (PIECE + 3) * 10
