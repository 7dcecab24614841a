"""What the routes do, without HTTP: requests turned into loss stages and predictions."""

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, TypeVar

import orjson
import torch

from app.engine import STAGES, InputError, Reduction, Stages, cross_entropy_stages
from app.model import CLASSES
from app.model.cache import Lru
from app.model.classifier import Classifier
from app.model.images import (
    ImageError,
    Picture,
    Upload,
    clean_filename,
    decode,
    open_upload,
    preview_data_url,
    to_batch,
)
from app.model.weights import check_size
from app.training.evaluation import evaluate_subset
from app.training.live import fresh_net
from app.training.step import criterion_mistake, norms, train_steps
from app.web.arrays import to_tensor
from app.web.i18n import class_names
from app.web.schemas import LossRequest
from app.web.serialize import stages_to_json
from app.web.settings import Settings

T = TypeVar("T")


class RequestError(InputError):
    """A request that is well-formed but asks for something that cannot be done."""


# torch's grain size: below it no kernel gains anything from a second thread.
SERIAL_MAX_VALUES = 32_768


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """`count` torch threads on this thread for the duration, and the count before put back
    after. torch.set_num_threads sets the calling thread's OpenMP team size, and also the count
    that a thread running torch for the first time starts with (at::init_num_threads reads it),
    so a thread that starts meanwhile keeps `count` for good: run_with_threads, which the compute
    lane runs all work through, sets the count of its own thread."""
    before = torch.get_num_threads()
    if count == before:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def intra_op_threads(values: int) -> AbstractContextManager[None]:
    """One torch thread for work on fewer than SERIAL_MAX_VALUES values, on this thread.

    A few kernels (max with a dim among them) open a parallel region whatever the size, and
    waking a second thread costs far more than such a tensor's whole computation: milliseconds
    on a busy machine, for microseconds of work. Larger work keeps the configured count."""
    return torch_threads(1) if values < SERIAL_MAX_VALUES else nullcontext()


def run_with_threads(threads: int, work: Callable[[], T]) -> T:
    """work(), with `threads` torch threads on this thread (a compute-lane thread)."""
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return work()


TORCH_VERSION = torch.__version__


def loss_answer(body: bytes, settings: Settings) -> dict[str, Any]:
    """A /loss request's JSON body -> the stages it asks for, ready to serialise."""
    parsed = LossRequest.parse(body)
    with torch.inference_mode():
        return stages_to_json(loss_stages(parsed, settings), parsed.fields)


def loss_stages(request: LossRequest, settings: Settings) -> Stages:
    """Validate the JSON arrays of a /loss request and run the engine on them."""
    caps, dims = settings.max_logits, settings.max_dims
    logits = to_tensor(request.logits, "logits", max_values=caps, max_dims=dims)
    target = to_tensor(request.target, "target", max_values=caps, max_dims=dims)
    if target.shape == logits.shape:  # probabilities; JSON writers print 1.0 as 1
        target = target.to(torch.float64)
    weight = parse_weight(request.weight, settings)
    with intra_op_threads(logits.numel()):
        return cross_entropy_stages(
            logits,
            target,
            weight,
            request.ignore_index,
            request.reduction,
            request.label_smoothing,
            STAGES if request.fields is None else request.fields,  # compute only those
        )


def parse_weight(value: Any, settings: Settings) -> torch.Tensor | None:
    if value is None:
        return None
    if isinstance(value, str):  # multipart forms carry it as a JSON string
        try:
            return _form_weight(value, settings)
        except InputError as exc:
            raise with_hint(exc, WEIGHT_HINT) from None
    weight = to_tensor(value, "weight", max_values=settings.max_classes, max_dims=1)
    return weight.to(torch.float64)


def _form_weight(value: str, settings: Settings) -> torch.Tensor | None:
    try:
        parsed = orjson.loads(value) if value.strip() else None
    except orjson.JSONDecodeError:
        raise RequestError(
            "weight: expected a JSON array of numbers, one per class", code="weight_not_json"
        ) from None
    return None if parsed is None else parse_weight(parsed, settings)


# The forms of /predict and /step take both: each one's errors name the other.
WEIGHT_HINT = (
    " (`weight` is the per-class loss weights, as in F.cross_entropy; a Net's state_dict file "
    "goes in the file part `weights`)"
)
WEIGHTS_HINT = (
    " (`weights` is a file of the Net's state_dict, as torch.save(net.state_dict(), PATH) "
    "writes it; the per-class loss weights are the field `weight`)"
)


def with_hint(exc: InputError, hint: str) -> InputError:
    """The same error (kind, code, params), its sentence followed by `hint`."""
    exc.args = (f"{exc}{hint}",)
    return exc


# The tutorial's own names for two classes: classes = ('plane', 'car', 'bird', ...).
TUTORIAL_NAMES = {"plane": CLASSES.index("airplane"), "car": CLASSES.index("automobile")}


@cache
def label_names() -> dict[str, int]:
    """Every name a label may use for a class, lower-cased: the CIFAR-10 names, the tutorial's
    two, and the names the Chinese pages show (飞机, 汽车, ...)."""
    shown = class_names("zh-CN")
    chinese = {shown[name].lower(): i for i, name in enumerate(CLASSES)}
    return {name: i for i, name in enumerate(CLASSES)} | TUTORIAL_NAMES | chinese


def parse_labels(labels: Sequence[str], count: int) -> list[int | None]:
    """Class names or indices, one per image; an empty label means "no label" for that image."""
    if len(labels) != count:
        raise RequestError(
            f"got {len(labels)} labels for {count} images: send one per image "
            "(an empty one for an image without a label), or none",
            code="labels_count",
            labels=len(labels),
            images=count,
        )
    names = label_names()
    indices: list[int | None] = []
    for i, label in enumerate(labels):
        text = label.strip().lower()
        if not text:
            indices.append(None)
        elif text in names:
            indices.append(names[text])
        elif text.isascii() and text.isdigit() and len(text) <= 3 and int(text) < len(CLASSES):
            indices.append(int(text))
        else:
            shown = label if len(label) <= 40 else label[:40] + "..."
            raise RequestError(
                f"label {i} ({shown!r}) is not a CIFAR-10 class: use a name ({', '.join(CLASSES)}) "
                f"or an index 0-{len(CLASSES) - 1}",
                code="label_unknown",
                index=i,
                label=shown,
            )
    return indices


def targets(given: Sequence[int | None], logits: torch.Tensor) -> tuple[list[int], str]:
    """The label where there is one, else the predicted class (the logits' argmax, computed
    only when some picture has no label); and which of the two it was."""
    labelled = sum(g is not None for g in given)
    source = "labels" if labelled == len(given) else "predicted" if labelled == 0 else "mixed"
    if source == "labels":
        return [g for g in given if g is not None], source
    predicted = logits.argmax(dim=1).tolist()
    return [p if g is None else g for g, p in zip(given, predicted, strict=True)], source


@dataclass(frozen=True, eq=False)  # eq=False: a tensor has no single truth value to compare by.
class PredictOptions:
    """What a /predict request asks for besides its pictures, checked before any is read."""

    labels: tuple[int | None, ...]  # one per picture; None: its prediction is its target
    reduction: Reduction = "mean"
    label_smoothing: float = 0.0
    weight: torch.Tensor | None = None  # float64 (C,)


def predict_options(
    images: int,
    labels: Sequence[str] | None,
    reduction: Reduction,
    label_smoothing: float,
    weight: str | None,
    settings: Settings,
) -> PredictOptions:
    """Check everything in a /predict request that needs no decoding, before any picture is read:
    the number of pictures, the labels against it, the weight."""
    check_count(images, settings)
    given = parse_labels(labels, images) if labels else [None] * images
    weights = parse_weight(weight, settings)
    if weights is not None:  # checked by the engine itself, on one row of the Net's 10 logits
        logits, target = torch.zeros(1, len(CLASSES)), torch.zeros(1, dtype=torch.int64)
        with torch.inference_mode(), intra_op_threads(logits.numel()):
            cross_entropy_stages(logits, target, weights, -100, reduction, label_smoothing)
    return PredictOptions(tuple(given), reduction, label_smoothing, weights)


def check_count(images: int, settings: Settings) -> None:
    if not images:
        raise RequestError("send at least one image", code="no_images")
    if images > settings.max_images:
        raise RequestError(
            f"got {images} images; at most {settings.max_images} per request",
            code="too_many_images",
            images=images,
            limit=settings.max_images,
        )


@dataclass(frozen=True)
class Refused:
    """A picture of a /predict request that cannot be used (its header or its data), and why.
    The request goes on without it: its label is dropped with it."""

    filename: str  # cleaned, as the error names it
    error: InputError

    def answer(self) -> dict[str, Any]:
        """Its entry in a /predict answer's `images`: the name, and the error in the shape of
        the API's 4xx answers."""
        return {"filename": self.filename, "error": error_json(self.error)}


def error_json(exc: InputError) -> dict[str, Any]:
    """An error as {code, detail, params}; params only where the error has values to carry.
    Plain strings, numbers and lists: it serialises as JSON or as any other answer format."""
    answer: dict[str, Any] = {"code": exc.code, "detail": str(exc)}
    if exc.params:
        answer["params"] = exc.params
    return answer


def open_each(files: Sequence[tuple[str, bytes]], settings: Settings) -> list[Upload | Refused]:
    """Read the header of each of a request's (filename, bytes) pairs, nothing decoded: an
    Upload where it is an allowed picture of at most max_image_pixels, else a Refused. Too many
    images refuse the request."""
    check_count(len(files), settings)
    return [_open(name, data, settings.max_image_pixels) for name, data in files]


def _open(name: str, data: bytes, max_pixels: int) -> Upload | Refused:
    try:
        return open_upload(data, name, max_pixels=max_pixels)
    except ImageError as exc:
        return Refused(clean_filename(name), exc)


def pixels(uploads: Sequence[Upload | Refused]) -> int:
    """What decoding the usable uploads will cost: their pixels as their headers declare them."""
    return sum(u.pixels for u in uploads if isinstance(u, Upload))


def check_pixels(uploads: Sequence[Upload | Refused], settings: Settings) -> None:
    """The cap on the pixels of a whole request, of the pictures that will be decoded."""
    total = pixels(uploads)
    if total > settings.max_request_pixels:
        raise RequestError(
            f"the images hold {total:,} pixels together; "
            f"at most {settings.max_request_pixels:,} per request",
            code="too_many_pixels",
            pixels=total,
            limit=settings.max_request_pixels,
        )


def admit_each(files: Sequence[tuple[str, bytes]], settings: Settings) -> list[Upload | Refused]:
    """/predict: every picture read up to its header, each refused on its own; the request is
    refused only for what concerns it whole (the image count, the pixels together)."""
    uploads = open_each(files, settings)
    check_pixels(uploads, settings)
    return uploads


def admit(files: Sequence[tuple[str, bytes]], settings: Settings) -> list[Upload]:
    """/step, all or nothing: as admit_each, but the first picture that cannot be used refuses
    the request (before the pixels together are counted)."""
    uploads: list[Upload] = []
    for item in open_each(files, settings):
        if isinstance(item, Refused):
            raise item.error
        uploads.append(item)
    check_pixels(uploads, settings)
    return uploads


def _decode(upload: Upload | Refused) -> Picture | Refused:
    if isinstance(upload, Refused):
        return upload
    try:
        return decode(upload)
    except ImageError as exc:
        return Refused(upload.filename, exc)


def none_usable(refused: Sequence[Refused]) -> InputError:
    """The error of a request none of whose pictures can be used: a lone picture's own, else
    one that names the first few and carries every one's, by index, in its params."""
    if len(refused) == 1:
        return refused[0].error
    shown = "; ".join(str(r.error) for r in refused[:3])
    more = f"; and {len(refused) - 3} more" if len(refused) > 3 else ""
    return RequestError(
        f"none of the {len(refused)} images can be used: {shown}{more}",
        code="images_unusable",
        images=len(refused),
        errors=[{"index": k, **r.answer()} for k, r in enumerate(refused)],
    )


def predict(
    classifier: Classifier, uploads: Sequence[Upload | Refused], options: PredictOptions
) -> dict[str, Any]:
    """Decode the uploads (already let through by admit_each), run the Net on those that can
    be used, compute every stage over them. `images` keeps every picture in the order sent, a
    refused one with its error; row r of the stages is images[row_images[r]].

    On one torch thread, as the floor (bench/floor.py) and /step: a batch is 64 pictures at
    most, and a second thread that has to wait for a busy core stalls every kernel. On the
    2-core development machine under load, 32 CIFAR-10 pictures took 0.7 ms to normalise on
    two threads and 0.05 ms on one; the logits are the same bit for bit."""
    with torch.inference_mode(), torch_threads(1):
        decoded = [_decode(u) for u in uploads]
        rows = [k for k, p in enumerate(decoded) if isinstance(p, Picture)]
        pictures = [p for p in decoded if isinstance(p, Picture)]
        if not pictures:
            raise none_usable([p for p in decoded if isinstance(p, Refused)])
        labels = [options.labels[k] for k in rows]  # a refused picture's label goes with it
        batch = to_batch(pictures)  # channels first, as the tutorial's tensors
        logits = classifier.logits(batch)  # (len(rows), 10)
        used, source = targets(labels, logits)
        target = torch.tensor(used, dtype=torch.int64)
        stages = cross_entropy_stages(
            logits, target, options.weight, -100, options.reduction, options.label_smoothing
        )
        answer = stages_to_json(stages)
        assert stages.predicted is not None  # every stage was asked for
        described = iter(
            describe(picture, predicted, label, used_k)
            for picture, predicted, label, used_k in zip(
                pictures, stages.predicted.tolist(), labels, used, strict=True
            )
        )
        answer["images"] = [
            p.answer() if isinstance(p, Refused) else next(described) for p in decoded
        ]
        answer["row_images"] = rows
        answer["classes"] = list(CLASSES)
        answer["target_source"] = source
        return answer


def describe(picture: Picture, predicted: int, label: int | None, target: int) -> dict[str, Any]:
    return {
        "filename": picture.filename,
        "format": picture.format,
        "original_size": list(picture.original_size),
        "predicted_class": CLASSES[predicted],
        "label": label,
        "target": target,
        "preview": preview_data_url(picture),
    }


# The `weights` file part of /predict, /step and /evaluate: the Net of a user's state_dict.

WeightsUpload = tuple[str, bytes] | None  # (filename, bytes), or None for the served weights


def weights_upload(filename: str | None, data: bytes, settings: Settings) -> WeightsUpload:
    """The part as (filename, bytes), refused at once when over the cap (before it is hashed
    or parsed)."""
    name = f"weights ({filename or 'upload'})"
    try:
        check_size(data, name, settings.max_weights_bytes)
    except InputError as exc:
        raise with_hint(exc, WEIGHTS_HINT) from None
    return (filename or "upload", data)


def choose_net(classifier: Classifier, weights: WeightsUpload, settings: Settings) -> Classifier:
    """The served classifier, or one with the uploaded weights' Net (torch.load with
    weights_only=True: nothing in the file runs). Milliseconds of parsing: off the event loop."""
    if weights is None:
        return classifier
    filename, data = weights
    try:
        return classifier.with_upload(data, f"weights ({filename})", settings.max_weights_bytes)
    except InputError as exc:
        raise with_hint(exc, WEIGHTS_HINT) from None


def with_weights(
    classifier: Classifier,
    weights: WeightsUpload,
    settings: Settings,
    work: Callable[..., dict[str, Any]],
    *args: Any,
) -> dict[str, Any]:
    """work(the chosen classifier, *args), the weights checked first, and which weights ran."""
    chosen = choose_net(classifier, weights, settings)
    answer = work(chosen, *args)
    answer["weights_source"] = chosen.source
    answer["weights_sha256"] = chosen.weights_sha256
    return answer


# Scores by the weights' sha256: the same weights always score the same (an optimisation only).
_SCORES: Lru[dict[str, Any]] = Lru(16)


def evaluate(classifier: Classifier) -> dict[str, Any]:
    """POST /evaluate: the Net scored on the shipped 1,000 test pictures."""
    with torch_threads(1):  # four small batches, a busy machine
        return dict(_SCORES.get(classifier.weights_sha256, lambda: evaluate_subset(classifier.net)))


# POST /step: the tutorial's five training lines on the uploads, on a copy of the Net.

Init = Literal["served", "fresh"]


def step_start(init: Init, weights: WeightsUpload) -> None:
    """A fresh Net and a `weights` file are two starting points: one at a time."""
    if init == "fresh" and weights is not None:
        raise RequestError(
            "init=fresh starts from a new Net, and a `weights` file was sent too: send init=served "
            "to start from your weights, or leave the file out",
            code="step_fresh_with_weights",
        )


def step_labels(labels: Sequence[str] | None, count: int) -> list[int]:
    """The true class of every image, required (a training step needs the truth); checked
    before anything is decoded."""
    got = len(labels or ())
    if got != count:
        raise RequestError(
            f"got {got} label{'' if got == 1 else 's'} for {count} image{'' if count == 1 else 's'}"
            ": a training step needs the true class of every image, so send one label per image",
            code="step_labels_count",
            labels=got,
            images=count,
        )
    assert labels is not None
    given = parse_labels(labels, count)
    empty = [i for i, label in enumerate(given) if label is None]
    if empty:
        raise RequestError(
            f"label {empty[0]} is empty: a training step needs the true class of every image",
            code="step_label_empty",
            index=empty[0],
        )
    return [label for label in given if label is not None]


def step(
    classifier: Classifier,
    uploads: Sequence[Upload],
    labels: Sequence[int],
    lr: float,
    momentum: float,
    steps: int,
    init: Init,
    seed: int,
) -> dict[str, Any]:
    """Decode the uploads (already let through by admit) and run the five lines `steps` times
    on them, from the served weights (never changed) or a fresh Net; every stage before and
    after, the gradients of the first step and the size of the updates."""
    # One torch thread whatever the batch: the steps are many small kernels, and a second
    # thread that has to wait for a busy core stalls every one of them. On the 2-core
    # development machine under load, train_steps on 64 CIFAR-10 pictures for 20 steps took
    # 0.55-0.95 s with torch.set_num_threads(1) and 7-10 s with 2.
    with torch_threads(1):
        pictures = [decode(u) for u in uploads]
        batch = to_batch(pictures)  # channels first, as the tutorial's tensors
        target = torch.tensor(labels, dtype=torch.int64)
        net = fresh_net(seed, classifier.device) if init == "fresh" else classifier.net
        trace = train_steps(net, batch, target, lr=lr, momentum=momentum, steps=steps)
    with torch.inference_mode(), torch_threads(1):  # what the steps did: nothing to train
        before = cross_entropy_stages(trace.outputs_before, target)
        assert before.predicted is not None  # every stage was asked for
        after = cross_entropy_stages(trace.outputs_after, target)
        grad_norms, update_norms = norms(trace.grads), norms(trace.updates)
        mistake = criterion_mistake(trace.outputs_before, target)
    warnings = step_warnings(trace.losses, grad_norms, update_norms, lr)
    return {
        "losses": trace.losses.numpy(),
        "before": stages_to_json(before),
        "after": stages_to_json(after),
        "grad_logits": trace.grad_outputs.numpy(),
        "grads": {name: trace.grads[name].numpy() for name in ("fc3.weight", "fc3.bias")},
        "activations": trace.activations.numpy(),
        "grad_norms": grad_norms,
        "update_norms": update_norms,
        "images": [
            describe(picture, int(predicted), label, label)
            for picture, predicted, label in zip(pictures, before.predicted, labels, strict=True)
        ],
        "classes": list(CLASSES),
        "lr": lr,
        "momentum": momentum,
        "steps": steps,
        "init": init,
        "seed": seed,
        "criterion_mistake": mistake,
        "warnings": [text for text, _ in warnings],
        "warning_codes": [code for _, code in warnings],
    }


def step_warnings(
    losses: torch.Tensor, grad_norms: dict[str, float], update_norms: dict[str, float], lr: float
) -> list[tuple[str, dict[str, Any]]]:
    """Why values of a /step answer are null: the training diverged (a learning rate too large).
    Diverging is an answer, not an error."""
    values = [*losses.tolist(), *grad_norms.values(), *update_norms.values()]
    if all(map(math.isfinite, values)):
        return []
    bad = [k for k, loss in enumerate(losses.tolist()) if not math.isfinite(loss)]
    step = bad[0] if bad else None  # losses[k] is the loss after step k
    when = f"after step {step}" if step else "before the first step" if step == 0 else "by the end"
    text = (
        f"The loss or the weights are NaN or infinite {when} (null in this answer): training "
        f"diverged. With lr {lr:g} each step overshoots, the weights grow until float32 "
        "overflows; a smaller learning rate keeps them finite."
    )
    return [(text, {"code": "step_diverged", "params": {"step": step, "lr": lr}})]
