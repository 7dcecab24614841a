"""A Net scored on the shipped 1,000 test pictures: what POST /evaluate answers."""

from typing import Any

import torch
import torch.nn.functional as F

from app.model import CLASSES, Net, normalize
from app.training.loop import accuracy, confusion_matrix
from app.training.subset import load_subset

BATCH = 250  # four forward passes: 1,000 pictures at once would hold 1,000 x 6 x 28 x 28 floats


@torch.inference_mode()
def evaluate_subset(net: Net) -> dict[str, Any]:
    """Accuracy (overall and per class), the confusion matrix (rows = true class) and the mean
    cross-entropy of `net` (in eval mode) on the shipped test subset."""
    images, labels = load_subset("test")  # uint8 (1000, 3, 32, 32), int64 (1000,)
    device = next(net.parameters()).device
    logits = torch.cat(
        [
            net(normalize(images[i : i + BATCH]).to(device)).cpu()
            for i in range(0, len(labels), BATCH)
        ]
    )  # (1000, 10)
    confusion = confusion_matrix(labels, logits.argmax(dim=1))
    per_class = confusion.diag() / confusion.sum(dim=1).clamp(min=1)
    return {
        "test_accuracy": accuracy(confusion),
        "per_class_accuracy": dict(zip(CLASSES, per_class.tolist(), strict=True)),
        "confusion_matrix": confusion.tolist(),
        "mean_loss": float(F.cross_entropy(logits, labels)),
        "test_images": len(labels),
    }
