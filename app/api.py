"""JSON routes: /loss, /predict, /classes, /model, /health."""

from typing import Annotated, Any

import torch
from fastapi import APIRouter, Depends, Request, UploadFile
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException

from app import service
from app.config import Settings, SettingsDep
from app.loss import stages_to_json
from app.model import CLASSES
from app.responses import OrjsonResponse
from app.schemas import ERRORS, LossRequest, LossStages, PredictAnswer, Reduction

router = APIRouter()


# The dependencies are coroutines: FastAPI runs a plain function dependency in the threadpool,
# a hop that costs more than a small /loss request's whole computation.
async def get_classifier(request: Request) -> service.Classifier:
    classifier: service.Classifier = request.app.state.classifier
    return classifier


ClassifierDep = Annotated[service.Classifier, Depends(get_classifier)]

# Requests this small are computed on the event loop (well under a millisecond: less than a
# threadpool round trip); larger ones go to the threadpool so that they never stall the loop.
INLINE_JSON_BYTES = 32 * 1024
INLINE_UPLOAD_BYTES = 16 * 1024
# ... and only if their headers declare few pixels: bytes do not bound the decoding work (a
# 2 kB WebP can declare 40 million pixels, seconds of decoding that would stall every request).
INLINE_UPLOAD_PIXELS = 256 * 256

LOSS_BODY = {
    "required": True,
    "content": {"application/json": {"schema": LossRequest.model_json_schema()}},
}


@router.post(
    "/loss",
    summary="Every stage of F.cross_entropy on your logits and target",
    response_model=LossStages,
    responses=ERRORS,
    openapi_extra={"requestBody": LOSS_BODY},
)
async def loss(request: Request, settings: SettingsDep) -> OrjsonResponse:
    body = await request.body()  # already read and size-capped by BodySizeLimitMiddleware
    if len(body) <= INLINE_JSON_BYTES:
        return _loss(body, settings)
    return await run_in_threadpool(_loss, body, settings)


def _loss(body: bytes, settings: Settings) -> OrjsonResponse:
    parsed = LossRequest.parse(body)
    with torch.inference_mode():
        stages = service.loss_stages(parsed, settings)
        answer = stages_to_json(stages, parsed.fields)
    return OrjsonResponse(answer)


IMAGE_HELP = "PNG, JPEG, GIF, WebP or BMP; up to 64."
LABEL_HELP = "One per image: a class name or index, or empty for no label."
WEIGHT_HELP = "JSON array of 10 class weights."


# The fields of a /predict form, validated as FastAPI validates File and Form parameters. The
# route reads the form itself and validates it in one step: FastAPI's per-parameter handling of
# the same fields costs more per request than decoding a 32x32 JPEG.
class PredictForm(BaseModel):
    model_config = ConfigDict(title="Body_predict_predict_post")

    image: list[UploadFile] = Field(description=IMAGE_HELP)
    label: list[str] | None = Field(default=None, description=LABEL_HELP)
    reduction: Reduction = "mean"
    label_smoothing: float = Field(default=0.0, ge=0.0, le=1.0, allow_inf_nan=False)
    weight: str | None = Field(default=None, description=WEIGHT_HELP)


def _predict_form_schema() -> dict[str, Any]:
    """The form's JSON schema, each upload written as FastAPI writes a File in OpenAPI 3.1."""
    schema = PredictForm.model_json_schema()
    schema["properties"]["image"]["items"] = {
        "type": "string",
        "contentMediaType": "application/octet-stream",
    }
    return schema


PREDICT_BODY = {
    "required": True,
    "content": {"multipart/form-data": {"schema": _predict_form_schema()}},
}

LIST_FIELDS = ("image", "label")
SCALAR_FIELDS = ("reduction", "label_smoothing", "weight")


def _empty_file(value: Any) -> bool:
    """What a browser sends for a file input left empty: no filename, no bytes."""
    return isinstance(value, UploadFile) and value.filename == "" and value.size == 0


def form_fields(form: FormData) -> dict[str, Any]:
    """The values FastAPI would hand to validation: empty fields and empty file inputs count
    as absent (their default applies), repeated list fields are gathered, and a repeated
    scalar field keeps its last value."""
    values: dict[str, Any] = {}
    for name in LIST_FIELDS:
        items = [item for item in form.getlist(name) if not _empty_file(item)]
        if items:
            values[name] = items
    for name in SCALAR_FIELDS:
        value = form.get(name)
        if value is None or value == "" or _empty_file(value):
            continue
        values[name] = value
    return values


async def read_form(request: Request) -> FormData:
    """The multipart form; a body that cannot be parsed is a 400, as for a File parameter."""
    try:
        return await request.form()
    except HTTPException:
        raise
    except Exception as exc:
        raise HTTPException(400, "There was an error parsing the body") from exc


@router.post(
    "/predict",
    summary="Run the Net on uploaded images and every loss stage on its logits",
    response_model=PredictAnswer,
    responses=ERRORS,
    openapi_extra={"requestBody": PREDICT_BODY},
)
async def predict(request: Request) -> OrjsonResponse:
    classifier: service.Classifier = request.app.state.classifier
    settings: Settings = request.app.state.settings
    form = await read_form(request)
    try:
        fields = PredictForm.model_validate(form_fields(form))
        uploads = [service.Upload(f.filename or "upload", f.file.read()) for f in fields.image]
    finally:
        await form.close()
    pixels = service.admit(uploads, settings)
    args = (
        classifier,
        uploads,
        fields.label,
        fields.reduction,
        fields.label_smoothing,
        fields.weight,
        settings,
    )
    if pixels <= INLINE_UPLOAD_PIXELS and sum(len(u.data) for u in uploads) <= INLINE_UPLOAD_BYTES:
        return _predict(*args)
    return await run_in_threadpool(_predict, *args)


def _predict(
    classifier: service.Classifier,
    uploads: list[service.Upload],
    label: list[str] | None,
    reduction: Reduction,
    label_smoothing: float,
    weight: str | None,
    settings: Settings,
) -> OrjsonResponse:
    with torch.inference_mode():
        answer = service.predict(
            classifier, uploads, label, reduction, label_smoothing, weight, settings
        )
    return OrjsonResponse(answer)


@router.get("/classes", summary="The CIFAR-10 classes, in label order")
def classes() -> dict[str, list[str]]:
    return {"classes": list(CLASSES)}


@router.get("/model", summary="The model card: architecture, parameters, training metrics")
def model(classifier: ClassifierDep) -> OrjsonResponse:
    return OrjsonResponse(classifier.card)


@router.get("/health", summary="Liveness: the device and torch version the app computes with")
def health(classifier: ClassifierDep) -> dict[str, str]:
    return {
        "status": "ok",
        "device": str(classifier.device),
        "torch": torch.__version__,
        "weights": str(classifier.weights),
        "weights_sha256": classifier.weights_sha256,
    }
