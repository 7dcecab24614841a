"""Answers as bytes: the engine's stages as JSON-ready values, and the orjson response."""

import math
import reprlib
from collections.abc import Collection
from typing import Any

import orjson
from fastapi.responses import JSONResponse
from torch import Tensor

from app.engine import STAGES, InputError, Stages

OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
SHOWN = reprlib.Repr()  # repr(), with long strings elided in the middle
SHOWN.maxstring = 40
SHOWN_FIELDS = 5


class OrjsonResponse(JSONResponse):
    """The JSON response of every route: orjson, numpy arrays natively, NaN and inf as null."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=OPTIONS)


def stages_to_json(stages: Stages, fields: Collection[str] | None = None) -> dict[str, Any]:
    """Stage name -> a C-contiguous float64/int64 numpy array (orjson with OPT_SERIALIZE_NUMPY
    writes NaN and inf in it as null), a Python number for 0-d stages (None if not finite),
    None for one_hot with probability targets, and the list of warnings."""
    if fields is None:
        names: Collection[str] = STAGES
    else:
        if isinstance(fields, str):  # a lone name, not an iterable of its letters
            fields = [fields]
        unknown = [f for f in fields if f not in STAGES]
        if unknown:  # the first few, each shortened: a request may name 20,000 long ones
            named = ", ".join(map(SHOWN.repr, unknown[:SHOWN_FIELDS]))
            if len(unknown) > SHOWN_FIELDS:
                named += f" and {len(unknown) - SHOWN_FIELDS:,} more"
            raise InputError(
                f"unknown field{'s' if len(unknown) > 1 else ''} {named}; "
                f"choose from {', '.join(STAGES)}."
            )
        wanted = set(fields)
        names = [name for name in STAGES if name in wanted]
    out: dict[str, Any] = {}
    for name in names:
        value = getattr(stages, name)
        if not isinstance(value, Tensor):
            # warnings, or a missing one_hot
            out[name] = list(value) if isinstance(value, list) else value
        elif value.dim() == 0:
            x = value.item()
            out[name] = x if isinstance(x, int) or math.isfinite(x) else None
        else:
            # numpy(force=True) detaches and copies to the CPU only where needed
            out[name] = (value if value.is_contiguous() else value.contiguous()).numpy(force=True)
    return out
