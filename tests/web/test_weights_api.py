"""The `weights` file part of /predict, /step and /evaluate: a tutorial graduate's cifar_net.pth
runs and gives plain PyTorch's numbers; hostile files get a 4xx and nothing in them runs."""

import hashlib
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from fastapi.testclient import TestClient

from app.model import CLASSES, normalize
from app.training.subset import load_subset
from app.web.schemas import EvaluateAnswer, PredictAnswer
from tests.model.hostile_weights import code_running, refused, tutorial_files
from tests.training.test_step import tutorial_loop
from tests.training.test_train import TutorialNet
from tests.web.test_step_api import LABEL_INDICES, LABELS, files, pictures, reference_batch


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cifar_net.pth, as the tutorial's own script saves it."""
    path, _ = tutorial_files(tmp_path_factory.mktemp("tutorial"), seed=11)
    return path


def plain_net(path: Path) -> TutorialNet:
    """The tutorial's way back: net = Net(); net.load_state_dict(torch.load(PATH))."""
    net = TutorialNet()
    net.load_state_dict(torch.load(path, weights_only=True))
    return net.eval()


def weights_part(path: Path) -> tuple[str, tuple[str, bytes, str]]:
    return ("weights", (path.name, path.read_bytes(), "application/octet-stream"))


def test_predict_with_the_tutorials_file_gives_plain_pytorchs_logits(client, tutorial) -> None:
    arrays = pictures(4)
    r = client.post("/predict", files=[*files(arrays), weights_part(tutorial)])
    assert r.status_code == 200, r.text
    body = r.json()
    with torch.no_grad():
        want = plain_net(tutorial)(reference_batch(arrays))
    assert torch.allclose(torch.tensor(body["logits"]), want, atol=1e-5)
    assert body["weights_source"] == "upload"
    assert body["weights_sha256"] == hashlib.sha256(tutorial.read_bytes()).hexdigest()
    PredictAnswer.model_validate(body)


def test_without_weights_the_served_net_runs(client, random_weights: Path) -> None:
    arrays = pictures(2)
    body = client.post("/predict", files=files(arrays)).json()
    with torch.no_grad():
        want = plain_net(random_weights)(reference_batch(arrays))
    assert torch.allclose(torch.tensor(body["logits"]), want, atol=1e-5)
    assert body["weights_source"] == "shipped"
    assert body["weights_sha256"] == hashlib.sha256(random_weights.read_bytes()).hexdigest()
    assert client.get("/health").json()["weights_sha256"] == body["weights_sha256"]


def test_the_same_file_again_gives_the_same_answer(client, tutorial) -> None:
    """The second request finds the Net in the cache; the answer cannot tell."""
    arrays = pictures(3, seed=5)
    answers = [
        client.post("/predict", files=[*files(arrays), weights_part(tutorial)]).json()
        for _ in range(2)
    ]
    assert answers[0] == answers[1]


def test_step_from_the_tutorials_file_is_the_tutorials_loop(client, tutorial) -> None:
    arrays = pictures(5)
    data = {"label": LABELS, "lr": "0.01", "steps": "3"}
    r = client.post("/step", files=[*files(arrays), weights_part(tutorial)], data=data)
    assert r.status_code == 200, r.text
    body = r.json()
    want = tutorial_loop(
        plain_net(tutorial).train(), reference_batch(arrays), torch.tensor(LABEL_INDICES),
        0.01, 0.9, 3,
    )  # fmt: skip
    assert body["losses"] == pytest.approx(want["losses"], rel=1e-5)
    assert (body["weights_source"], body["init"]) == ("upload", "served")


def test_step_refuses_a_fresh_net_and_a_file_at_once(client, tutorial) -> None:
    data = {"label": LABELS[:1], "init": "fresh"}
    r = client.post("/step", files=[*files(pictures(1)), weights_part(tutorial)], data=data)
    assert r.status_code == 422 and "init=served" in r.json()["detail"]


def independent_evaluation(net: torch.nn.Module) -> dict:
    """One forward pass over the subset, counted the plain way."""
    images, labels = load_subset("test")
    with torch.no_grad():
        logits = net(normalize(images))
    predicted = logits.argmax(dim=1)
    confusion = [[0] * 10 for _ in range(10)]
    for t, p in zip(labels.tolist(), predicted.tolist(), strict=True):
        confusion[t][p] += 1
    return {
        "test_accuracy": (predicted == labels).sum().item() / len(labels),
        "per_class_accuracy": {
            c: (predicted[labels == i] == i).float().mean().item() for i, c in enumerate(CLASSES)
        },
        "confusion_matrix": confusion,
        "mean_loss": F.cross_entropy(logits, labels).item(),
        "test_images": len(labels),
    }


@pytest.mark.parametrize("which", ["upload", "shipped"])
def test_evaluate_equals_an_independent_evaluation(client, tutorial, random_weights, which) -> None:
    path = tutorial if which == "upload" else random_weights
    parts = [weights_part(tutorial)] if which == "upload" else None
    r = client.post("/evaluate", files=parts) if parts else client.post("/evaluate")
    assert r.status_code == 200, r.text
    body = r.json()
    want = independent_evaluation(plain_net(path))
    assert body["confusion_matrix"] == want["confusion_matrix"]
    assert body["test_images"] == 1000
    assert body["test_accuracy"] == pytest.approx(want["test_accuracy"], abs=1e-9)
    assert body["per_class_accuracy"] == pytest.approx(want["per_class_accuracy"], abs=1e-6)
    assert body["mean_loss"] == pytest.approx(want["mean_loss"], rel=1e-5)
    assert body["weights_source"] == which
    assert body["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    EvaluateAnswer.model_validate(body)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, bytes, str, int, str]]:
    return refused(tmp_path_factory.mktemp("hostile"))


@pytest.mark.parametrize("route", ["/predict", "/step", "/evaluate"])
def test_hostile_files_get_their_4xx(client: TestClient, hostile, route: str) -> None:
    for case, data, _code, status, match in hostile:
        parts = [("weights", ("bad.pth", data, "application/octet-stream"))]
        if route != "/evaluate":
            parts += files(pictures(1))
        r = client.post(route, files=parts, data={"label": ["cat"]} if route == "/step" else {})
        assert r.status_code == status, (case, r.text)
        detail = r.json()["detail"]
        assert detail.startswith("weights (bad.pth): "), (case, detail)
        assert re.search(match, detail), (case, detail)
        assert "the field `weight`" in detail and "weights_only" not in detail, (case, detail)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol 5")
@pytest.mark.parametrize("route", ["/predict", "/evaluate"])
def test_code_in_an_uploaded_pickle_never_runs(client, tmp_path: Path, route: str) -> None:
    marker = tmp_path / "marker"
    for case, data in code_running(marker).items():
        parts = [("weights", ("evil.pth", data, "application/octet-stream"))]
        if route == "/predict":
            parts += files(pictures(1))
        r = client.post(route, files=parts)
        assert r.status_code == 422, (case, r.text)
        assert "weights_only" not in r.json()["detail"]
        assert not marker.exists(), case


def test_a_bad_weight_names_weights(client) -> None:
    """(A bad `weights` names `weight`: test_hostile_files_get_their_4xx.)"""
    r = client.post("/predict", files=files(pictures(1)), data={"weight": '["a", "b"]'})
    assert r.status_code == 422 and "the file part `weights`" in r.json()["detail"]
    r = client.post("/predict", files=files(pictures(1)), data={"weight": "not json"})
    assert r.status_code == 422 and "the file part `weights`" in r.json()["detail"]
