"""JSON routes: /loss, /predict, /step, /evaluate, /classes, /model, /health."""

import inspect
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, get_type_hints

import anyio
from fastapi import APIRouter, File, Request, Response, UploadFile
from fastapi.routing import APIRoute
from pydantic import Field

from app.engine import Reduction
from app.model import CLASSES
from app.model.classifier import Classifier
from app.model.images import Upload
from app.web import pages, service
from app.web.deps import ClassifierDep, SettingsDep, state
from app.web.forms import FormModel, read_form
from app.web.negotiation import NPZ, prefers_npz
from app.web.schemas import (
    ERRORS,
    EvaluateAnswer,
    LossRequest,
    LossStages,
    PredictAnswer,
    StepAnswer,
)
from app.web.serialize import NpzResponse, OrjsonResponse
from app.web.settings import Settings


class LeanRoute(APIRoute):
    """FastAPI's route, with FastAPI's per-request handling left out where the endpoint takes
    the request alone and answers a Response: it is the handler itself.

    FastAPI's handler (fastapi.routing.get_request_handler) reads the body, solves the
    dependencies and serialises the return value; /loss, /predict and /step read their bodies
    with their own parsers (schemas.LossRequest.parse, forms.read_form), have no dependency to
    solve and return their Response. Left in, it cost a small /loss request 25 us of CPU in
    process, about a tenth of it (python -m bench.inprocess fields8, with and without). Routing,
    the OpenAPI schema, exception handlers and middleware are FastAPI's as for any route."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        if takes_the_request_alone(self.endpoint) and not self.dependencies:
            return self.endpoint
        return super().get_route_handler()


def takes_the_request_alone(endpoint: Callable[..., Any]) -> bool:
    """Whether `endpoint` is `async def f(request: Request) -> Response`."""
    hints = get_type_hints(endpoint)
    parameters = list(inspect.signature(endpoint).parameters)
    return (
        inspect.iscoroutinefunction(endpoint)
        and parameters == ["request"]
        and hints.get("request") is Request
        and hints.get("return") is Response
    )


router = APIRouter(route_class=LeanRoute)


async def respond(
    request: Request,
    small: bool,
    work: Callable[..., dict[str, Any]],
    *args: object,
    render: type[Response] = OrjsonResponse,
    headers: dict[str, str] | None = None,
) -> Response:
    """A request's answer: work(*args) (its torch work) and the JSON (or `render`) of what it
    returns. On the event loop when small, since a thread hop costs more than the work; else on
    the compute lane, so that the loop never stalls, the JSON included (a 9 MB /loss request's
    answer is 106 MB of JSON, 0.65 s of orjson). The lane has settings.compute_threads threads
    (1 by default): large requests queue for it rather than take turns at the GIL, which costs
    each of them far more than waiting its turn."""
    if small:
        return render(work(*args), headers=headers)
    lane: anyio.CapacityLimiter = request.app.state.compute_lane
    threads: int = request.app.state.torch_threads

    def rendered() -> Response:
        return render(work(*args), headers=headers)

    return await anyio.to_thread.run_sync(service.run_with_threads, threads, rendered, limiter=lane)


# Requests this small are computed on the event loop; larger ones go to the compute lane so that
# they never stall the loop. JSON: up to 32 KiB, well under a millisecond of work. Uploads: up to
# 64 KiB (32 CIFAR-10 JPEGs are 37 KB: 4 ms; the most, 64 of them in 60 KB, 9.3 ms), where the
# hop to a thread and back costs more, as the thread and the loop take turns at the GIL: in one
# A/B run under load (bench/README.md), 32 JPEGs ran at 0.64x the floor's rate through the lane
# and 0.81x here. Their headers are read on the loop too: a few reads each (HEADER_READS at
# most), and no PNG text or profile is inflated. Larger uploads are read in the lane.
INLINE_JSON_BYTES = 32 * 1024
INLINE_UPLOAD_BYTES = 64 * 1024
# ... and only if their headers declare few pixels: bytes do not bound the decoding work (a
# 2 kB WebP can declare 40 million pixels, seconds of decoding that would stall every request).
INLINE_UPLOAD_PIXELS = 256 * 256

# /step runs on the loop too for one step on at most this many pictures (within the caps above,
# with no weights file to parse): 3.5 ms for 4 CIFAR-10 pictures and 5.9 ms for 16 (the fastest
# of 30 runs of service.step, on the loaded development machine), the budget of the uploads
# above; the hop to the compute lane and back cost more than the step itself. More steps, or
# more pictures, go to the lane: each step adds 1.5 ms or more.
INLINE_STEP_PICTURES = 16

WEIGHTS_DOC = (
    "Optional: your Net's weights, the file torch.save(net.state_dict(), PATH) writes (up to 2 "
    "MB), loaded with torch.load(weights_only=True); not `weight`, the per-class loss weights."
)
# The pictures of /predict and /step: one file part each, in memory.
IMAGES_DOC = "PNG, JPEG, GIF, WebP or BMP; up to 64."
Weights = Annotated[UploadFile | None, File(description=WEIGHTS_DOC)]


def read_weights(part: UploadFile | None, settings: Settings) -> service.WeightsUpload:
    """The `weights` part, in memory (the body cap keeps every part there), size-checked."""
    if part is None:
        return None
    return service.weights_upload(part.filename, part.file.read(), settings)


VARY = {"Vary": "Accept"}  # answers that are JSON or .npz by the Accept header


def answer_class(request: Request) -> type[Response]:
    """JSON, or the .npz archive of the same arrays when the Accept header ranks it first."""
    return NpzResponse if prefers_npz(request.headers.get("accept")) else OrjsonResponse


# /loss and /predict also answer .npz (Accept: application/x-npz), documented in the schema.
NPZ_DOC = (
    "The same answer as JSON, or with `Accept: application/x-npz` an uncompressed .npz that "
    "`np.load(io.BytesIO(r.content))` opens without pickle: one array per key (0-d for a "
    "number), NaN and inf kept where JSON writes null, absent stages left out, strings as "
    "unicode arrays, records (/predict's images) as unicode arrays of their JSON."
)
NPZ_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "description": NPZ_DOC,
        "content": {NPZ: {"schema": {"type": "string", "format": "binary"}}},
    }
}


async def json_answer(
    request: Request, settings: Settings, work: Callable[[bytes, Settings], dict[str, Any]]
) -> Response:
    """A JSON route's answer: work(body, settings), on the loop or the compute lane by size."""
    body = await request.body()  # already read and size-capped by the middleware (edge.py)
    small = len(body) <= INLINE_JSON_BYTES
    render = answer_class(request)
    return await respond(request, small, work, body, settings, render=render, headers=VARY)


@router.post(
    "/loss",
    tags=["loss"],
    summary="Every stage of F.cross_entropy on your logits and target",
    response_model=LossStages,
    responses={**NPZ_ANSWER, **ERRORS},
    openapi_extra={"requestBody": LossRequest.openapi_body()},
)
async def loss(request: Request) -> Response:
    settings, _ = state(request)  # without a dependency: FastAPI's solving of one costs ~10%
    return await json_answer(request, settings, service.loss_answer)


class PredictForm(FormModel):
    """The form of /predict (read by the route: see app.web.forms)."""

    image: Annotated[list[UploadFile], Field(description=IMAGES_DOC)]
    label: Annotated[
        list[str] | None,
        Field(description="One per image: a class name or index, or empty for no label."),
    ] = None
    reduction: Reduction = "mean"
    label_smoothing: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)] = 0.0
    weight: Annotated[
        str | None,
        Field(description="JSON array of 10 class weights; not `weights`, the Net's file."),
    ] = None
    weights: Annotated[UploadFile | None, Field(description=WEIGHTS_DOC)] = None


@router.post(
    "/predict",
    tags=["pictures"],
    summary="Run the Net on uploaded images and every loss stage on its logits",
    response_model=PredictAnswer,
    responses={**NPZ_ANSWER, **ERRORS},
    openapi_extra={"requestBody": PredictForm.openapi_body()},
)
async def predict(request: Request) -> Response:
    settings, classifier = state(request)
    async with read_form(request) as form:
        return await predict_answer(request, classifier, settings, PredictForm.of(form))


async def predict_answer(
    request: Request, classifier: Classifier, settings: Settings, form: PredictForm
) -> Response:
    image, label, weight = form.image, form.label, form.weight
    reduction, label_smoothing = form.reduction, form.label_smoothing
    upload = read_weights(form.weights, settings)
    # Everything that needs no picture read is checked first: counts, labels, weight.
    options = service.predict_options(
        len(image), label, reduction, label_smoothing, weight, settings
    )

    def run(uploads: list[Upload | service.Refused]) -> dict[str, Any]:
        return service.with_weights(classifier, upload, settings, service.predict, uploads, options)

    def admitted() -> list[Upload | service.Refused]:  # headers read, each picture on its own
        files = [(f.filename or "upload", f.file.read()) for f in image]  # in memory
        return service.admit_each(files, settings)

    render = answer_class(request)
    if sum(f.size or 0 for f in image) > INLINE_UPLOAD_BYTES:
        return await respond(request, False, lambda: run(admitted()), render=render, headers=VARY)
    uploads = admitted()
    # Uploaded weights are parsed off the loop: milliseconds of torch.load, unless cached.
    small = service.pixels(uploads) <= INLINE_UPLOAD_PIXELS and upload is None
    return await respond(request, small, run, uploads, render=render, headers=VARY)


@router.get("/classes", summary="The CIFAR-10 classes, in label order", tags=["model"])
def classes() -> dict[str, list[str]]:
    return {"classes": list(CLASSES)}


@router.get(
    "/model",
    tags=["model"],
    summary="The model card: architecture, parameters, training metrics",
    responses={
        200: {"content": {"text/html": {}}, "description": "JSON, or the page for browsers"}
    },
)
def model(request: Request, classifier: ClassifierDep) -> Response:
    """The model card as JSON; a browser (Accept ranking text/html first) gets the page."""
    response: Response
    if pages.prefers_html(request):
        response = pages.model_card(request)
    else:
        response = OrjsonResponse(classifier.card)
    response.headers["Vary"] = "Accept, Accept-Language"
    return response


@router.get(
    "/health",
    summary="Liveness: the device and torch version the app computes with",
    tags=["service"],
)
async def health(classifier: ClassifierDep) -> dict[str, str]:
    """A coroutine, as it does next to nothing: it answers on the event loop, with no hop to a
    thread of the pool, so it measures the loop itself."""
    return {
        "status": "ok",
        "device": str(classifier.device),
        "torch": service.TORCH_VERSION,
        "weights": str(classifier.weights),
        "weights_sha256": classifier.weights_sha256,
    }


class StepForm(FormModel):
    """The form of /step (read by the route: see app.web.forms)."""

    image: Annotated[list[UploadFile], Field(description=IMAGES_DOC)]
    label: Annotated[
        list[str] | None,
        Field(description="One per image, required: a class name (or plane, car) or index."),
    ] = None
    lr: Annotated[float, Field(gt=0.0, allow_inf_nan=False, description="SGD's lr.")] = 0.001
    momentum: Annotated[float, Field(ge=0.0, lt=1.0, allow_inf_nan=False)] = 0.9
    steps: Annotated[int, Field(ge=1, le=100, description="Times the five lines run.")] = 1
    init: Annotated[
        service.Init, Field(description="served: the app's weights; fresh: a new Net, seeded.")
    ] = "served"
    seed: Annotated[int, Field(ge=0, le=2**32 - 1, description="torch.manual_seed for fresh.")] = 0
    weights: Annotated[UploadFile | None, Field(description=WEIGHTS_DOC)] = None


@router.post(
    "/step",
    tags=["training"],
    summary="The tutorial's five training lines on uploaded images, on a copy of the Net",
    response_model=StepAnswer,
    responses=ERRORS,
    openapi_extra={"requestBody": StepForm.openapi_body()},
)
async def step(request: Request) -> Response:
    """optimizer.zero_grad(); outputs = net(inputs); loss = criterion(outputs, labels);
    loss.backward(); optimizer.step(), `steps` times on the uploaded batch, with
    torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum) and nn.CrossEntropyLoss(),
    starting from the served weights, your `weights` file, or a fresh Net, which never change."""
    settings, classifier = state(request)
    async with read_form(request) as form:
        return await step_answer(request, classifier, settings, StepForm.of(form))


async def step_answer(
    request: Request, classifier: Classifier, settings: Settings, form: StepForm
) -> Response:
    image, label, init = form.image, form.label, form.init
    upload = read_weights(form.weights, settings)
    service.step_start(init, upload)
    files = [(f.filename or "upload", f.file.read()) for f in image]  # in memory
    labels = service.step_labels(label, len(files))  # checked before anything is decoded
    uploads = service.admit(files, settings)  # headers read, nothing decoded
    args = (uploads, labels, form.lr, form.momentum, form.steps, init, form.seed)
    work = (classifier, upload, settings, service.step, *args)
    small = (
        form.steps == 1
        and len(uploads) <= INLINE_STEP_PICTURES
        and sum(len(data) for _, data in files) <= INLINE_UPLOAD_BYTES
        and service.pixels(uploads) <= INLINE_UPLOAD_PIXELS
        and upload is None
    )
    return await respond(request, small, service.with_weights, *work)


@router.post(
    "/evaluate",
    tags=["model"],
    summary="The Net's accuracy, confusion matrix and mean loss on the shipped test pictures",
    response_model=EvaluateAnswer,
    responses=ERRORS,
)
async def evaluate(
    request: Request, classifier: ClassifierDep, settings: SettingsDep, weights: Weights = None
) -> Response:
    """The served Net, or the Net of your `weights` file, on the 1,000 test pictures the app
    ships (the first 100 of each class of CIFAR-10's test set), computed off the event loop."""
    upload = read_weights(weights, settings)
    work = (classifier, upload, settings, service.evaluate)
    return await respond(request, False, service.with_weights, *work)
