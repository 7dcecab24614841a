"""What the routes do, without the web: the loaded Net, and requests turned into loss stages."""

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import torch

from app.arrays import to_tensor
from app.config import Settings
from app.images import Picture, load_picture, preview_data_url, to_batch
from app.loss import Stages, cross_entropy_stages, stages_to_json
from app.model import CLASSES, Net, architecture, load_net, parameter_count, pick_device
from app.schemas import LossRequest, Reduction

log = logging.getLogger("app")


class RequestError(ValueError):
    """A request that is well-formed but asks for something that cannot be done."""


def loss_stages(request: LossRequest, settings: Settings) -> Stages:
    """Validate the JSON arrays of a /loss request and run the engine on them."""
    caps = {"max_values": settings.max_logits, "max_dims": settings.max_dims}
    logits = to_tensor(request.logits, "logits", **caps)
    target = to_tensor(request.target, "target", **caps)
    weight = parse_weight(request.weight, settings)
    return cross_entropy_stages(
        logits, target, weight, request.ignore_index, request.reduction, request.label_smoothing
    )


def parse_weight(value: Any, settings: Settings) -> torch.Tensor | None:
    if value is None:
        return None
    if isinstance(value, str):  # multipart forms carry it as a JSON string
        try:
            value = orjson.loads(value) if value.strip() else None
        except orjson.JSONDecodeError:
            raise RequestError("weight: expected a JSON array of numbers, one per class") from None
        if value is None:
            return None
    weight = to_tensor(value, "weight", max_values=settings.max_classes, max_dims=1)
    return weight.to(torch.float64)


def parse_labels(labels: Sequence[str], count: int) -> torch.Tensor:
    """Class names or indices, one per image -> int64 (N,)."""
    if len(labels) != count:
        raise RequestError(
            f"got {len(labels)} labels for {count} images: send one per image, or none"
        )
    names = {name: i for i, name in enumerate(CLASSES)}
    indices = []
    for i, label in enumerate(labels):
        text = label.strip().lower()
        if text in names:
            indices.append(names[text])
        elif text.isascii() and text.isdigit() and len(text) <= 3 and int(text) < len(CLASSES):
            indices.append(int(text))
        else:
            shown = label if len(label) <= 40 else label[:40] + "..."
            raise RequestError(
                f"label {i} ({shown!r}) is not a CIFAR-10 class: use a name ({', '.join(CLASSES)}) "
                f"or an index 0-{len(CLASSES) - 1}"
            )
    return torch.tensor(indices, dtype=torch.int64)


@dataclass
class Classifier:
    """The Net, where it runs, and what is known about its weights."""

    net: Net
    device: torch.device
    weights: Path
    weights_sha256: str
    metrics: dict[str, Any] | None

    @classmethod
    def load(cls, settings: Settings) -> "Classifier":
        device = pick_device(settings.device)
        net = load_net(settings.weights, device)
        digest = hashlib.sha256(settings.weights.read_bytes()).hexdigest()
        metrics = None
        if settings.metrics_path.is_file():
            metrics = json.loads(settings.metrics_path.read_text())
        return cls(net, device, settings.weights, digest, metrics)

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """(N, 3, 32, 32) normalised pictures -> (N, 10) logits on the CPU."""
        with torch.inference_mode():
            return self.net(batch.to(self.device)).cpu()

    def card(self) -> dict[str, Any]:
        return {
            "architecture": architecture(self.net),
            "parameters": parameter_count(self.net),
            "weights": self.weights.name,
            "weights_sha256": self.weights_sha256,
            "device": str(self.device),
            "classes": list(CLASSES),
            "metrics": self.metrics,
        }


@dataclass
class Upload:
    filename: str
    data: bytes


def predict(
    classifier: Classifier,
    uploads: Sequence[Upload],
    labels: Sequence[str] | None,
    reduction: Reduction,
    label_smoothing: float,
    weight: str | None,
    settings: Settings,
) -> dict[str, Any]:
    """Decode the uploads, run the Net, and compute every loss stage on its logits."""
    if not uploads:
        raise RequestError("send at least one image")
    if len(uploads) > settings.max_images:
        raise RequestError(f"got {len(uploads)} images; at most {settings.max_images} per request")
    pictures = [
        load_picture(u.data, u.filename, max_pixels=settings.max_image_pixels) for u in uploads
    ]
    target_weight = parse_weight(weight, settings)
    logits = classifier.logits(to_batch(pictures))  # (N, 10)
    if labels:
        target, source = parse_labels(labels, len(pictures)), "labels"
    else:
        target, source = logits.argmax(dim=1), "predicted"
    stages = cross_entropy_stages(logits, target, target_weight, -100, reduction, label_smoothing)
    answer = stages_to_json(stages)
    given = target.tolist() if source == "labels" else [None] * len(pictures)
    answer["images"] = [
        describe(picture, int(predicted), label)
        for picture, predicted, label in zip(pictures, stages.predicted, given, strict=True)
    ]
    answer["classes"] = list(CLASSES)
    answer["target_source"] = source
    return answer


def describe(picture: Picture, predicted: int, label: int | None) -> dict[str, Any]:
    return {
        "filename": picture.filename,
        "format": picture.format,
        "original_size": list(picture.original_size),
        "predicted_class": CLASSES[predicted],
        "label": label,
        "preview": preview_data_url(picture),
    }
