"""POST /predict against plain PyTorch, to the last bit: the tutorial's Net on a channels-first
batch built here from the PNGs' own pixels, the target of each picture its label or else that
Net's argmax, and F.cross_entropy on the float64 logits.

The logits, the engine's loss and log-probabilities, and torch_loss are PyTorch's bit for bit on
every CPU (the engine runs PyTorch's log_softmax and softmax kernels and sums as nll_loss does:
on an AVX2 CPU, separate exp(), log() and sum() steps differed in the last bits)."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from fastapi.testclient import TestClient

from app.model import CLASSES
from app.web.settings import Settings
from tests.conftest import build_app
from tests.training.test_train import TutorialNet
from tests.web.test_step_api import files, pictures, reference_batch

# One label form per kind: a name, an index, the tutorial's name, empty (the prediction).
LABELS = ["cat", "9", "plane", ""]


def tutorial_logits(weights: Path, batch: torch.Tensor) -> torch.Tensor:
    net = TutorialNet()
    net.load_state_dict(torch.load(weights, weights_only=True))
    with torch.no_grad():
        return net(batch)


@pytest.mark.parametrize(("count", "labelled"), [(1, True), (1, False), (3, True), (32, None)])
def test_predict_is_plain_pytorch_bit_for_bit(
    settings: Settings, random_weights: Path, count: int, labelled: bool | None
) -> None:
    """labelled: every picture a label, none, or (None) the label kinds in turn, some empty."""
    arrays = pictures(count, seed=count)
    if labelled is None:
        labels = [LABELS[k % len(LABELS)] for k in range(count)]
    else:
        labels = [LABELS[k % 3] if labelled else "" for k in range(count)]
    with TestClient(build_app(settings)) as client:
        r = client.post("/predict", files=files(arrays), data={"label": labels})
    assert r.status_code == 200, r.text
    body = r.json()

    batch = reference_batch(arrays).contiguous()  # channels first, as the tutorial's tensors
    assert batch.is_contiguous()
    logits = tutorial_logits(random_weights, batch).double()  # float32 -> float64 is exact
    assert torch.equal(torch.tensor(body["logits"], dtype=torch.float64), logits)

    named = {"cat": 3, "9": 9, "plane": 0}
    predicted = logits.argmax(dim=1).tolist()
    given = [named.get(label) for label in labels]
    target = [p if g is None else g for g, p in zip(given, predicted, strict=True)]
    kinds = {g is None for g in given}
    assert body["target_source"] == (
        "mixed" if len(kinds) == 2 else "predicted" if kinds == {True} else "labels"
    )
    assert body["predicted"] == predicted
    assert [image["label"] for image in body["images"]] == given
    assert [image["target"] for image in body["images"]] == target
    assert [image["predicted_class"] for image in body["images"]] == [CLASSES[p] for p in predicted]
    assert [image["filename"] for image in body["images"]] == [f"p{i}.png" for i in range(count)]
    expected = F.cross_entropy(logits, torch.tensor(target)).item()
    assert body["torch_loss"] == expected
    assert body["loss"] == expected
    assert body["log_probs"] == F.log_softmax(logits, 1).tolist()
