"""GET /try lists a fixed catalogue of PyTorch calls (app/engine/tries.py) with the code each
runs; POST /try runs one of them on the tensors sent. PyTorch's exception is an answer (200,
ok false), not a failure: 422 is only for an unknown call or a malformed body."""

import math
from typing import Any, Literal

import torch
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from app.engine import Reduction
from app.engine.tries import Tried, catalogue, run_call
from app.web.api import json_answer
from app.web.arrays import to_tensor
from app.web.deps import SettingsDep
from app.web.schemas import ERRORS, NESTED, JsonBody
from app.web.service import RequestError, intra_op_threads, parse_weight
from app.web.settings import Settings

router = APIRouter()

CallName = Literal[
    "index", "one_hot_float", "one_hot_long", "labels_float", "float32", "class_called"
]


class TryRequest(JsonBody):
    """A call of the catalogue, and the tensors and criterion options it runs on."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"call": "one_hot_long", "logits": [[2.0, 0.5, -1.0]], "target": [0]},
                {"call": "index", "logits": [[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]], "target": [0, 3]},
            ]
        },
    )

    call: CallName = Field(description="Which call of GET /try to run.")
    logits: Any = Field(
        description="outputs: the logits, shape (N, C) (or (C), (N, C, d1, ...)), made float64.",
        json_schema_extra=NESTED,
    )
    target: Any = Field(
        description="labels: class indices, integers (any value: PyTorch says what it refuses).",
        json_schema_extra=NESTED,
    )
    weight: list[Any] | None = Field(None, description="The criterion's weight, one per class.")
    ignore_index: int = Field(-100, ge=-(2**63), lt=2**63)
    reduction: Reduction = "mean"
    label_smoothing: float = Field(0.0, description="Passed as it is: PyTorch checks it.")


class TryError(BaseModel):
    type: str = Field(description="The exception's class, e.g. RuntimeError.")
    message: str = Field(description="What PyTorch said, as str(exception).")


class TryAnswer(BaseModel):
    ok: bool = Field(description="Whether PyTorch computed a loss.")
    value: Any = Field(
        None, description="The loss (a list for reduction='none'; null where NaN or infinite)."
    )
    error: TryError | None = Field(None, description="What PyTorch raised, when ok is false.")


class TryCall(BaseModel):
    name: str
    code: str = Field(description="The lines run, after the setup lines.")
    description: str


class TryCatalogue(BaseModel):
    setup: list[str] = Field(description="The lines every call runs first.")
    calls: list[TryCall]


@router.get(
    "/try",
    tags=["loss"],
    summary="The PyTorch calls POST /try runs, with the code of each",
    response_model=TryCatalogue,
)
def list_calls() -> dict[str, Any]:
    return catalogue()


@router.post(
    "/try",
    tags=["loss"],
    summary="Run one call of the catalogue on your tensors: PyTorch's loss or its error",
    response_model=TryAnswer,
    responses=ERRORS,
    openapi_extra={"requestBody": TryRequest.openapi_body()},
)
async def try_call(request: Request, settings: SettingsDep) -> Response:
    return await json_answer(request, settings, answer)


def answer(body: bytes, settings: Settings) -> dict[str, Any]:
    """A POST /try body -> {ok, value} or {ok, error}."""
    parsed = TryRequest.parse(body)
    caps, dims = settings.max_logits, settings.max_dims
    logits = to_tensor(parsed.logits, "logits", max_values=caps, max_dims=dims, integer=False)
    labels = to_tensor(parsed.target, "target", max_values=caps, max_dims=dims, integer=True)
    weight = parse_weight(parsed.weight, settings)
    if parsed.call in ("one_hot_float", "one_hot_long") and logits.dim() > 1:
        made = labels.numel() * logits.shape[1]  # what F.one_hot allocates
        if made > caps:
            raise RequestError(
                f"target: F.one_hot would make {labels.numel():,} x {logits.shape[1]:,} = "
                f"{made:,} values (the limit is {caps:,})",
                code="one_hot_too_large",
                values=made,
                limit=caps,
            )
    with intra_op_threads(logits.numel()):
        tried = run_call(
            parsed.call,
            logits,
            labels,
            weight,
            parsed.ignore_index,
            parsed.reduction,
            parsed.label_smoothing,
        )
    return as_json(tried)


def as_json(tried: Tried) -> dict[str, Any]:
    if not tried.ok:
        return {"ok": False, "error": {"type": tried.error_type, "message": tried.error_message}}
    value = tried.value
    if value is None or value.dim() == 0:
        x = None if value is None else float(value)
        return {"ok": True, "value": x if x is not None and math.isfinite(x) else None}
    return {"ok": True, "value": value.to(torch.float64).contiguous().numpy()}
