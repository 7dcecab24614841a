"""JSON routes: /loss, /predict, /classes, /model, /health."""

from typing import Annotated

import torch
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool

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


@router.post(
    "/predict",
    summary="Run the Net on uploaded images and every loss stage on its logits",
    response_model=PredictAnswer,
    responses=ERRORS,
)
async def predict(
    classifier: ClassifierDep,
    settings: SettingsDep,
    image: Annotated[list[UploadFile], File(description="PNG, JPEG, GIF, WebP or BMP; up to 64.")],
    label: Annotated[
        list[str] | None,
        Form(description="One per image: a class name or index, or empty for no label."),
    ] = None,
    reduction: Annotated[Reduction, Form()] = "mean",
    label_smoothing: Annotated[float, Form(ge=0.0, le=1.0, allow_inf_nan=False)] = 0.0,
    weight: Annotated[str | None, Form(description="JSON array of 10 class weights.")] = None,
) -> OrjsonResponse:
    uploads = [service.Upload(f.filename or "upload", f.file.read()) for f in image]  # in memory
    pixels = service.admit(uploads, settings)
    args = (classifier, uploads, label, reduction, label_smoothing, weight, settings)
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
