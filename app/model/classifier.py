"""The served Net: where it runs, what is known about its weights, and its logits for a batch."""

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import torch

from app.model.net import CLASSES, Net, architecture, inference, parameter_count
from app.model.weights import NetCache, load_net, pick_device, sha256_file

WeightsSource = Literal["shipped", "upload"]


@dataclass
class Classifier:
    """The Net, where it runs, and what is known about its weights."""

    net: Net
    device: torch.device
    weights: Path
    weights_sha256: str
    metrics: dict[str, Any] | None
    source: WeightsSource = "shipped"  # the server's weights, or a request's upload
    uploads: NetCache = field(default_factory=NetCache, repr=False)  # Nets of uploaded weights

    @classmethod
    def load(cls, weights: Path, device: str = "auto", metrics: Path | None = None) -> "Classifier":
        """The Net with `weights` on `device` ("auto", "cpu", "cuda"), and the training metrics
        in the JSON file `metrics` if there is one."""
        where = pick_device(device)
        net = load_net(weights, where)
        digest = sha256_file(weights)
        known = (
            json.loads(metrics.read_text()) if metrics is not None and metrics.is_file() else None
        )
        return cls(net, where, weights, digest, known)

    def with_upload(self, data: bytes, filename: str, max_bytes: int) -> "Classifier":
        """This classifier with the Net of uploaded weights instead (parsed once per file while
        it stays in the cache); WeightsError for a file that is not the Net's state_dict."""
        net, digest = self.uploads.get(data, self.device, filename, max_bytes)
        return replace(
            self,
            net=net,
            weights=Path(filename),
            weights_sha256=digest,
            metrics=None,
            source="upload",
        )

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """(N, 3, 32, 32) normalised pictures -> (N, 10) logits on the CPU: net(batch), bit for
        bit, through net.inference (without nn.Module's calls)."""
        with torch.inference_mode():
            return self.forward(batch.to(self.device)).cpu()

    @cached_property
    def forward(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The Net's forward as plain torch calls (see net.inference), made on first use: once
        for the served weights, once a request for uploaded ones (with_upload makes a new
        Classifier each time; making it took about 45 us on the development machine)."""
        return inference(self.net)

    @cached_property
    def card(self) -> dict[str, Any]:
        """The model card GET /model answers: the same for the life of the process."""
        return {
            "architecture": architecture(self.net),
            "parameters": parameter_count(self.net),
            "weights": self.weights.name,
            "weights_sha256": self.weights_sha256,
            "device": str(self.device),
            "classes": list(CLASSES),
            "metrics": self.metrics,
        }
