"""POST /step end to end, against the tutorial's five lines run here in plain PyTorch on a batch
built here from the PNGs' own pixels."""

import asyncio
import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from app.model import CLASSES
from app.web import api, service
from app.web.schemas import StepAnswer
from app.web.settings import Settings
from tests.conftest import build_app, image_bytes
from tests.training.test_step import tutorial_loop
from tests.training.test_train import TutorialNet

PARAMETERS = [
    "conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias",
    "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias",
]  # fmt: skip
LABELS = ["cat", "plane", "9", "car", "ship"]
LABEL_INDICES = [3, 0, 9, 1, 8]


def pictures(count: int, seed: int = 0) -> list[np.ndarray]:
    """Random 32x32 RGB pictures: (32, 32, 3) uint8 each."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(count)]


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")  # lossless: the Net sees these pixels
    return buffer.getvalue()


def files(arrays: list[np.ndarray]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("image", (f"p{i}.png", png(a), "image/png")) for i, a in enumerate(arrays)]


def reference_batch(arrays: list[np.ndarray]) -> torch.Tensor:
    """The tutorial's ToTensor then Normalize((0.5,) * 3, (0.5,) * 3), written out."""
    x = np.stack(arrays).astype(np.float32).transpose(0, 3, 1, 2) / 255.0  # (N, 3, 32, 32)
    return torch.from_numpy((x - 0.5) / 0.5)


def tensor(value) -> torch.Tensor:
    return torch.tensor(value, dtype=torch.float64)


@pytest.mark.parametrize("init", ["served", "fresh"])
@pytest.mark.parametrize("lr", [0.001, 0.01])
@pytest.mark.parametrize("steps", [1, 5])
def test_step_is_the_tutorials_tutorial_loop(client, random_weights: Path, init, lr, steps) -> None:
    arrays = pictures(5)
    seed = 3
    data = {"label": LABELS, "lr": str(lr), "steps": str(steps), "init": init, "seed": str(seed)}
    r = client.post("/step", files=files(arrays), data=data)
    assert r.status_code == 200, r.text
    body = r.json()

    torch.manual_seed(seed)
    net = TutorialNet()
    if init == "served":
        net.load_state_dict(torch.load(random_weights, weights_only=True))
    labels = torch.tensor(LABEL_INDICES)
    want = tutorial_loop(net, reference_batch(arrays), labels, lr, 0.9, steps)

    assert body["losses"] == pytest.approx(want["losses"], rel=1e-5)
    assert len(body["losses"]) == steps + 1
    assert torch.allclose(tensor(body["grad_logits"]), want["grad_logits"].double(), atol=1e-7)
    for name in ("fc3.weight", "fc3.bias"):
        got, expected = tensor(body["grads"][name]), want["grads"][name].double()
        assert torch.allclose(got, expected, rtol=1e-4, atol=1e-7), name
    assert list(body["grad_norms"]) == PARAMETERS and list(body["update_norms"]) == PARAMETERS
    grad_norms = {n: g.norm().item() for n, g in want["grads"].items()}
    assert body["grad_norms"] == pytest.approx(grad_norms, rel=1e-5)
    update_norms = {n: u.norm().item() for n, u in want["updates"].items()}
    assert body["update_norms"] == pytest.approx(update_norms, rel=1e-4)
    # the stages of the first and the last forward pass, as /loss answers them
    assert torch.allclose(tensor(body["before"]["logits"]), want["outputs"].double(), atol=1e-5)
    assert torch.allclose(tensor(body["after"]["logits"]), want["after"].double(), atol=1e-4)
    # losses are F.cross_entropy's float64 values, as torch_loss is; the engine's own float64
    # arithmetic may differ from it in the last digit
    assert body["before"]["torch_loss"] == body["losses"][0]
    assert body["after"]["torch_loss"] == body["losses"][-1]
    assert body["before"]["loss"] == pytest.approx(body["losses"][0], rel=1e-14)
    assert body["after"]["loss"] == pytest.approx(body["losses"][-1], rel=1e-14)
    after_softmax = torch.softmax(want["after"].double(), dim=1)
    assert torch.allclose(tensor(body["after"]["softmax"]), after_softmax, atol=1e-5)
    assert body["before"]["one_hot"] == torch.eye(10)[LABEL_INDICES].tolist()
    echoed = {k: body[k] for k in ("lr", "momentum", "steps", "init", "seed")}
    assert echoed == {"lr": lr, "momentum": 0.9, "steps": steps, "init": init, "seed": seed}
    assert body["warnings"] == [] and body["warning_codes"] == []
    StepAnswer.model_validate(body)  # the answer is what /docs says it is


def test_step_trains_on_a_channels_first_batch_as_the_tutorial_does(
    client, random_weights: Path
) -> None:
    """/predict's batches are channels last in memory (same logits, faster convolutions), but
    the gradients of such a batch differ from the tutorial's in their last bits: the first
    step's gradients and every norm here are bit for bit the tutorial loop's."""
    arrays = pictures(5, seed=6)
    data = {"label": LABELS, "lr": "0.01", "steps": "2"}
    body = client.post("/step", files=files(arrays), data=data).json()
    net = TutorialNet()
    net.load_state_dict(torch.load(random_weights, weights_only=True))
    with service.torch_threads(1):  # as /step runs: two threads may split a sum differently
        # channels first in memory, as the tutorial's ToTensor (a permute, then .contiguous())
        # and DataLoader's stack make it
        batch, labels = reference_batch(arrays).contiguous(), torch.tensor(LABEL_INDICES)
        want = tutorial_loop(net, batch, labels, 0.01, 0.9, 2)
    for name in ("fc3.weight", "fc3.bias"):  # float32, written as its shortest repr
        got = torch.tensor(body["grads"][name], dtype=torch.float32)
        assert torch.equal(got, want["grads"][name]), name
    assert body["grad_norms"] == {n: g.double().norm().item() for n, g in want["grads"].items()}
    assert body["update_norms"] == {n: u.double().norm().item() for n, u in want["updates"].items()}
    after = torch.tensor(body["after"]["logits"], dtype=torch.float32)
    assert torch.equal(after, want["after"])


@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_momentum_is_sgds(client, random_weights: Path, momentum: float) -> None:
    arrays = pictures(4, seed=5)
    data = {"label": LABELS[:4], "lr": "0.01", "momentum": str(momentum), "steps": "4"}
    body = client.post("/step", files=files(arrays), data=data).json()
    net = TutorialNet()
    net.load_state_dict(torch.load(random_weights, weights_only=True))
    labels = torch.tensor(LABEL_INDICES[:4])
    want = tutorial_loop(net, reference_batch(arrays), labels, 0.01, momentum, 4)
    assert body["losses"] == pytest.approx(want["losses"], rel=1e-5)
    update_norms = {n: u.norm().item() for n, u in want["updates"].items()}
    assert body["update_norms"] == pytest.approx(update_norms, rel=1e-4)
    assert body["momentum"] == momentum


def test_the_first_step_s_gradients_are_built_as_the_page_shows(client) -> None:
    """d loss / d outputs = (softmax - one_hot) / N; fc3.bias.grad its column sums;
    fc3.weight.grad = grad_logits^T . activations."""
    r = client.post("/step", files=files(pictures(5, seed=1)), data={"label": LABELS})
    body = r.json()
    n = len(LABELS)
    softmax, one_hot = tensor(body["before"]["softmax"]), tensor(body["before"]["one_hot"])
    grad_logits, activations = tensor(body["grad_logits"]), tensor(body["activations"])
    assert grad_logits.shape == (n, 10) and activations.shape == (n, 84)
    assert torch.allclose(grad_logits, (softmax - one_hot) / n, atol=1e-7)
    assert torch.allclose(tensor(body["grads"]["fc3.bias"]), grad_logits.sum(0), atol=1e-6)
    assert torch.allclose(
        tensor(body["grads"]["fc3.weight"]), grad_logits.T @ activations, atol=1e-6
    )
    assert (activations >= 0).all()  # they come out of a ReLU


def test_the_activations_are_the_inputs_of_fc3(client, random_weights: Path) -> None:
    arrays = pictures(3, seed=2)
    net = TutorialNet()
    net.load_state_dict(torch.load(random_weights, weights_only=True))
    inputs: dict[str, torch.Tensor] = {}
    net.fc3.register_forward_hook(lambda _, args, out: inputs.setdefault("fc3", args[0]))
    with torch.no_grad():
        net(reference_batch(arrays))
    r = client.post("/step", files=files(arrays), data={"label": LABELS[:3], "steps": "3"})
    assert torch.allclose(tensor(r.json()["activations"]), inputs["fc3"].double(), atol=1e-5)


def test_the_served_weights_never_change(client) -> None:
    net = client.app.state.classifier.net
    before = {k: v.clone() for k, v in net.state_dict().items()}
    data = {"label": LABELS, "lr": "0.5", "steps": "20"}
    r = client.post("/step", files=files(pictures(5)), data=data)
    assert r.status_code == 200 and all(x > 0 for x in r.json()["update_norms"].values())
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    assert not any(p.requires_grad for p in net.parameters())
    # and a second request starts where the first did
    again = client.post("/step", files=files(pictures(5)), data=data).json()
    assert again["losses"] == r.json()["losses"]


def test_a_fresh_net_starts_near_ln_10(client) -> None:
    arrays = pictures(8, seed=4)
    labels = [CLASSES[i % 10] for i in range(8)]
    for seed in (0, 1):
        data = {"label": labels, "init": "fresh", "seed": str(seed)}
        body = client.post("/step", files=files(arrays), data=data).json()
        assert abs(body["losses"][0] - math.log(10)) < 0.05
        assert max(max(row) for row in body["before"]["softmax"]) < 0.2  # nearly uniform


def test_images_are_described_as_predict_describes_them(client) -> None:
    arrays = pictures(2)
    r = client.post("/step", files=files(arrays), data={"label": ["car", "plane"]})
    body = r.json()
    predicted = client.post("/predict", files=files(arrays), data={"label": ["car", "plane"]})
    assert body["images"] == predicted.json()["images"]
    assert [i["label"] for i in body["images"]] == [1, 0]
    assert body["classes"] == list(CLASSES)


def test_predict_takes_the_tutorials_class_names_too(client) -> None:
    for alias, name in (("plane", "airplane"), ("car", "automobile"), (" Plane ", "airplane")):
        image = [("image", ("a.png", image_bytes(), "image/png"))]
        r = client.post("/predict", files=image, data={"label": alias})
        assert r.status_code == 200, r.text
        assert r.json()["images"][0]["label"] == CLASSES.index(name)


def test_a_learning_rate_of_1000_diverges_and_that_is_an_answer(client) -> None:
    data = {"label": LABELS, "lr": "1000", "steps": "10"}
    r = client.post("/step", files=files(pictures(5)), data=data)
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["losses"]) == 11 and math.isfinite(body["losses"][0])
    assert body["losses"][-1] is None and body["after"]["loss"] is None
    first_bad = next(i for i, x in enumerate(body["losses"]) if x is None)
    assert body["warning_codes"] == [
        {"code": "step_diverged", "params": {"step": first_bad, "lr": 1000.0}}
    ]
    assert "diverged" in body["warnings"][0]
    StepAnswer.model_validate(body)


def test_one_picture_one_label(client) -> None:
    r = client.post("/step", files=files(pictures(1)), data={"label": "frog"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["grad_logits"]) == 1 and body["images"][0]["label"] == 6
    assert body["criterion_mistake"].startswith("AttributeError:")
    many = client.post("/step", files=files(pictures(2)), data={"label": ["frog", "cat"]})
    assert many.json()["criterion_mistake"].startswith("RuntimeError:")


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"lr": "0"}, "lr"),
        ({"lr": "-0.1"}, "lr"),
        ({"lr": "nan"}, "lr"),
        ({"lr": "inf"}, "lr"),
        ({"lr": "fast"}, "lr"),
        ({"steps": "0"}, "steps"),
        ({"steps": "101"}, "steps"),
        ({"steps": "1.5"}, "steps"),
        ({"momentum": "1"}, "momentum"),
        ({"momentum": "-0.1"}, "momentum"),
        ({"momentum": "nan"}, "momentum"),
        ({"init": "random"}, "init"),
        ({"seed": "-1"}, "seed"),
        ({"label": ["cat", "dog"]}, "got 2 labels for 3 images"),
        ({"label": ["cat", "", "dog"]}, "label 1 is empty"),
        ({"label": ["cat", "unicorn", "dog"]}, "'unicorn'"),
        ({"label": ["cat", "10", "dog"]}, "'10'"),
        ({}, "got 0 labels for 3 images"),
    ],
)
def test_bad_options_are_a_4xx_before_anything_is_decoded(
    client, monkeypatch, data, needle
) -> None:
    def never(upload):
        raise AssertionError("decoded")

    monkeypatch.setattr(service, "decode", never)
    sent = {"label": ["cat", "dog", "ship"], **data}
    if not data:
        del sent["label"]
    r = client.post("/step", files=files(pictures(3)), data=sent)
    assert r.status_code == 422, r.text
    assert needle in str(r.json()["detail"])


def test_one_bad_picture_refuses_the_request_and_names_it(client) -> None:
    good = png(pictures(1)[0])
    broken = good[: len(good) // 2]  # a sound header, the pixels cut short
    sent = [
        ("image", ("good.png", good, "image/png")),
        ("image", ("broken.png", broken, "image/png")),
    ]
    r = client.post("/step", files=sent, data={"label": ["cat", "dog"]})
    assert r.status_code == 422
    assert "broken.png" in r.json()["detail"]
    junk = [sent[0], ("image", ("notes.txt", b"hello", "text/plain"))]
    r = client.post("/step", files=junk, data={"label": ["cat", "dog"]})
    assert r.status_code == 422 and "notes.txt" in r.json()["detail"]


def test_too_many_pictures_is_a_4xx(client, settings) -> None:
    count = settings.max_images + 1
    sent = [("image", (f"{i}.png", image_bytes(), "image/png")) for i in range(count)]
    r = client.post("/step", files=sent, data={"label": ["cat"] * count})
    assert r.status_code == 422 and f"at most {settings.max_images}" in r.json()["detail"]


def test_one_small_step_runs_on_the_event_loop_and_the_rest_off_it(client, monkeypatch) -> None:
    """One step on at most INLINE_STEP_PICTURES small pictures is bounded work, done on the loop
    as a small /predict is; more steps, more pictures or a weights file go to the compute lane."""
    on_loop = []
    work = service.step

    def spy(*args):
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return work(*args)

    monkeypatch.setattr(service, "step", spy)
    most = api.INLINE_STEP_PICTURES
    for images, data, inline in [
        (pictures(1), {"label": "cat"}, True),
        (pictures(most), {"label": ["cat"] * most}, True),
        (pictures(1), {"label": "cat", "steps": "2"}, False),
        (pictures(most + 1), {"label": ["cat"] * (most + 1)}, False),
    ]:
        on_loop.clear()
        r = client.post("/step", files=files(images), data=data)
        assert r.status_code == 200 and on_loop == [inline], (len(images), data, on_loop)


def test_step_takes_the_upload_body_cap(settings: Settings) -> None:
    capped = settings.model_copy(update={"max_json_bytes": 2_000, "max_upload_bytes": 40_000})
    arrays = pictures(3)  # about 9 kB of PNG: over the JSON cap, under the upload cap
    with TestClient(build_app(capped)) as client:
        r = client.post("/step", files=files(arrays), data={"label": ["cat", "dog", "ship"]})
        assert r.status_code == 200, r.text
        many = pictures(8)  # about 25 kB
        r = client.post("/step", files=files(many * 2), data={"label": ["cat"] * 16})
        assert r.status_code == 413 and "40,000-byte limit" in r.json()["detail"]


def test_step_is_in_the_openapi_schema(client) -> None:
    schema = client.get("/openapi.json").json()
    operation = schema["paths"]["/step"]["post"]
    assert "422" in operation["responses"]
    answer = schema["components"]["schemas"]["StepAnswer"]["properties"]
    assert {"losses", "before", "after", "grad_logits", "grads", "activations"} <= set(answer)
    assert {"grad_norms", "update_norms", "images", "warnings", "warning_codes"} <= set(answer)
