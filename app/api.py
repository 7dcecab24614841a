"""JSON routes: /loss, /predict, /classes, /model, /health."""

from typing import Annotated

import torch
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile

from app import service
from app.config import SettingsDep
from app.loss import stages_to_json
from app.model import CLASSES
from app.responses import OrjsonResponse
from app.schemas import ERRORS, LossRequest, LossStages, PredictAnswer, Reduction

router = APIRouter()


async def raw_body(request: Request) -> bytes:
    return await request.body()  # already read and size-capped by BodySizeLimitMiddleware


def get_classifier(request: Request) -> service.Classifier:
    classifier: service.Classifier = request.app.state.classifier
    return classifier


RawBody = Annotated[bytes, Depends(raw_body)]
ClassifierDep = Annotated[service.Classifier, Depends(get_classifier)]

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
def loss(body: RawBody, settings: SettingsDep) -> OrjsonResponse:
    request = LossRequest.parse(body)
    with torch.inference_mode():
        stages = service.loss_stages(request, settings)
        answer = stages_to_json(stages, request.fields)
    return OrjsonResponse(answer)


@router.post(
    "/predict",
    summary="Run the Net on uploaded images and every loss stage on its logits",
    response_model=PredictAnswer,
    responses=ERRORS,
)
def predict(
    classifier: ClassifierDep,
    settings: SettingsDep,
    image: Annotated[list[UploadFile], File(description="PNG, JPEG, GIF, WebP or BMP; up to 64.")],
    label: Annotated[
        list[str] | None, Form(description="One per image: a class name or index.")
    ] = None,
    reduction: Annotated[Reduction, Form()] = "mean",
    label_smoothing: Annotated[float, Form(ge=0.0, le=1.0)] = 0.0,
    weight: Annotated[str | None, Form(description="JSON array of 10 class weights.")] = None,
) -> OrjsonResponse:
    uploads = [service.Upload(f.filename or "upload", f.file.read()) for f in image]
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
    return OrjsonResponse(classifier.card())


@router.get("/health", summary="Liveness: the device and torch version the app computes with")
def health(classifier: ClassifierDep) -> dict[str, str]:
    return {
        "status": "ok",
        "device": str(classifier.device),
        "torch": torch.__version__,
        "weights": str(classifier.weights),
        "weights_sha256": classifier.weights_sha256,
    }
