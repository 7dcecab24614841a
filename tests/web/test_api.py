"""The JSON routes, end to end in process, against F.cross_entropy and autograd."""

import io
import json
import tempfile
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from PIL import Image

from app.model import CLASSES
from tests.conftest import image_bytes

TUTORIAL = [-1.2, -2.1, 0.6, 2.3, -0.5, 1.4, 0.3, -0.8, -0.3, -1.6]
STAGES = [
    "logits", "max_logit", "shifted", "exp", "sum_exp", "log_sum_exp", "softmax", "log_probs",
    "one_hot", "target_dist", "per_element_loss", "loss", "grad", "predicted", "denominator",
    "torch_loss", "warnings", "warning_codes",
]  # fmt: skip


def reference(logits, target, **options):
    """PyTorch's own loss and autograd gradient, in float64."""
    z = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    t = torch.tensor(target)
    if t.is_floating_point():  # probabilities: read again as float64, not rounded to float32
        t = torch.tensor(target, dtype=torch.float64)
    if "weight" in options:
        options["weight"] = torch.tensor(options["weight"], dtype=torch.float64)
    loss = F.cross_entropy(z, t, **options)
    loss.sum().backward()
    return loss.detach(), z.grad


def close(answer, expected, tol=1e-12):
    """Float64 answers against PyTorch run here: orjson writes the shortest repr, which reads
    back as the same float64, so only the engine's rounding (an ulp or so) separates them."""
    return torch.allclose(torch.tensor(answer, dtype=torch.float64), expected, atol=tol, rtol=tol)


def test_tutorial_example_returns_every_stage(client: TestClient) -> None:
    r = client.post("/loss", json={"logits": TUTORIAL, "target": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == STAGES
    loss, grad = reference(TUTORIAL, 3)
    assert close(body["loss"], loss) and close(body["torch_loss"], loss)
    assert close(body["grad"], grad)
    assert close(body["softmax"], torch.softmax(torch.tensor(TUTORIAL, dtype=torch.float64), 0))
    assert body["one_hot"] == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    assert body["predicted"] == 3
    assert body["warnings"] == []


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"reduction": "sum"},
        {"reduction": "none"},
        {"weight": [1.0, 2.0, 0.5]},
        {"weight": [1.0, 2.0, 0.5], "label_smoothing": 0.2},
        {"ignore_index": 1, "weight": [0.3, 2.0, 1.5]},
        {"label_smoothing": 1.0, "reduction": "none"},
    ],
)
def test_batch_matches_pytorch(client: TestClient, options: dict) -> None:
    logits = [[2.0, 0.5, -1.0], [0.1, 0.2, 3.0], [-0.4, 1.7, 0.0], [5.0, -5.0, 0.3]]
    target = [0, 2, 1, 1]
    r = client.post("/loss", json={"logits": logits, "target": target, **options})
    assert r.status_code == 200, r.text
    loss, grad = reference(logits, target, **options)
    assert close(r.json()["loss"], loss)
    assert close(r.json()["grad"], grad)


def test_probability_targets_and_spatial_dims(client: TestClient) -> None:
    torch.manual_seed(1)
    logits = torch.randn(2, 4, 3, 2, dtype=torch.float64)
    probs = torch.softmax(torch.randn(2, 4, 3, 2, dtype=torch.float64), dim=1)
    payload = {"logits": logits.tolist(), "target": probs.tolist(), "label_smoothing": 0.1}
    r = client.post("/loss", json={**payload, "weight": [1.0, 0.5, 2.0, 1.0]})
    assert r.status_code == 200, r.text
    loss, grad = reference(
        logits.tolist(), probs.tolist(), label_smoothing=0.1, weight=[1.0, 0.5, 2.0, 1.0]
    )
    assert close(r.json()["loss"], loss) and close(r.json()["grad"], grad)
    assert r.json()["one_hot"] is None


def test_fields_selects_stages(client: TestClient) -> None:
    r = client.post("/loss", json={"logits": TUTORIAL, "target": 3, "fields": ["loss", "grad"]})
    assert r.status_code == 200
    assert set(r.json()) <= {"loss", "grad", "warnings"} and {"loss", "grad"} <= set(r.json())


def test_all_ignored_mean_is_null_with_a_warning(client: TestClient) -> None:
    r = client.post("/loss", json={"logits": [[1.0, 2.0], [0.0, 1.0]], "target": [-100, -100]})
    assert r.status_code == 200
    assert r.json()["loss"] is None
    assert r.json()["warnings"]


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({"logits": [], "target": []}, "logits"),
        ({"logits": [[1.0, 2.0], [1.0]], "target": [0, 1]}, "logits"),
        ({"logits": [1.0, 2.0], "target": 2}, "range"),
        ({"logits": [1.0, 2.0], "target": 1.0}, "float"),
        ({"logits": [1.0, 2.0], "target": [-0.5, 1.5]}, "negative"),
        ({"logits": [1.0, 2.0], "target": 1, "weight": [1.0]}, "weight"),
        ({"logits": [1.0, 2.0], "target": 1, "reduction": "average"}, "reduction"),
        ({"logits": [1.0, 2.0], "target": 1, "label_smoothing": 1.5}, "label_smoothing"),
        ({"logits": [1.0, 2.0], "target": 1, "label_smoothing": -0.1}, "label_smoothing"),
        ({"logits": [[[[[[[[[[1.0]]]]]]]]]], "target": 0}, "dim"),
        ({"logits": ["a", "b"], "target": 0}, "logits"),
        ({"logits": [1.0, 2.0], "target": "cat"}, "target"),
        ({"logits": [1.0, 2.0], "target": 1, "fields": ["nope"]}, "nope"),
        ({"logits": [1.0, 2.0], "target": 1, "targets": 1}, "targets"),
        ({"logits": [1.0, 2.0], "target": 1, "ignore_index": 1.5}, "ignore_index"),
        ({"target": 1}, "logits"),
        ([1, 2, 3], "dict"),
    ],
)
def test_bad_input_is_a_4xx_saying_what_is_wrong(client: TestClient, payload, needle: str) -> None:
    r = client.post("/loss", json=payload)
    assert r.status_code == 422, r.text
    assert needle in json.dumps(r.json()["detail"]).lower()


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"",
        b'{"logits": [NaN], "target": 0}',
        b'{"logits": [Infinity], "target": 0}',
        b"[" * 100_000,
    ],
)
def test_malformed_json_is_400(client: TestClient, raw: bytes) -> None:
    r = client.post("/loss", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert "json" in r.json()["detail"].lower()


def test_overflowing_numbers_are_rejected(client: TestClient) -> None:
    raw = b'{"logits": [1e400, 0.0], "target": 0}'
    r = client.post("/loss", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert "infinity" in r.json()["detail"]
    raw = b'{"logits": [1.0, 0.0], "target": 123456789012345678901234567890}'
    r = client.post("/loss", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_body_over_the_cap_is_413(client: TestClient, settings) -> None:
    raw = b"[" + b"1.0," * (settings.max_json_bytes // 4) + b"1.0]"
    r = client.post("/loss", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert "limit" in r.json()["detail"]

    def chunks():  # no content-length: counted as it streams
        for _ in range(settings.max_json_bytes // 65536 + 2):
            yield b" " * 65536

    r = client.post("/loss", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_too_many_values_is_422(client: TestClient, settings) -> None:
    n = settings.max_logits // 2 + 1
    raw = ('{"logits": [' + ",".join(["[0,0]"] * n) + '], "target": 0}').encode()
    r = client.post("/loss", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert "values" in r.json()["detail"]


def test_predict_one_image_with_label(client: TestClient) -> None:
    files = [("image", ("red.png", image_bytes(), "image/png"))]
    r = client.post("/predict", files=files, data={"label": "cat"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["target_source"] == "labels"
    assert body["classes"] == list(CLASSES)
    (img,) = body["images"]
    assert img["filename"] == "red.png" and img["label"] == 3 and img["target"] == 3
    assert img["original_size"] == [32, 32]
    assert img["preview"].startswith("data:image/png;base64,")
    loss, grad = reference(body["logits"], [3])
    assert close(body["loss"], loss) and close(body["grad"], grad)
    assert img["predicted_class"] == CLASSES[body["predicted"][0]]


def test_predict_batch_without_labels_targets_the_prediction(client: TestClient) -> None:
    files = [
        (
            "image",
            (
                f"{i}.jpg",
                image_bytes((i * 60, 100, 255 - i * 60), (40 + i, 30), "JPEG"),
                "image/jpeg",
            ),
        )
        for i in range(4)
    ]
    r = client.post("/predict", files=files, data={"reduction": "none", "label_smoothing": "0.1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["target_source"] == "predicted"
    assert body["one_hot"] == F.one_hot(torch.tensor(body["predicted"]), 10).tolist()
    loss, _ = reference(body["logits"], body["predicted"], reduction="none", label_smoothing=0.1)
    assert close(body["loss"], loss)


def test_predict_with_weight(client: TestClient) -> None:
    weight = [float(i + 1) for i in range(10)]
    files = [("image", (f"{i}.png", image_bytes((i * 20, 0, 0)), "image/png")) for i in range(3)]
    r = client.post(
        "/predict", files=files, data={"label": ["0", "ship", "9"], "weight": json.dumps(weight)}
    )
    assert r.status_code == 200, r.text
    loss, grad = reference(r.json()["logits"], [0, 8, 9], weight=weight)
    assert close(r.json()["loss"], loss) and close(r.json()["grad"], grad)


@pytest.mark.parametrize(
    ("files", "data", "needle"),
    [
        ([("image", ("a.png", b"hello", "image/png"))], {}, "a.png"),
        ([("image", ("a.png", image_bytes(), "image/png"))], {"label": "unicorn"}, "unicorn"),
        ([("image", ("a.png", image_bytes(), "image/png"))], {"label": "10"}, "10"),
        ([("image", ("a.png", image_bytes(), "image/png"))], {"label": ["cat", "dog"]}, "labels"),
        ([("image", ("a.png", image_bytes(), "image/png"))], {"weight": "[1, 2]"}, "weight"),
        ([("image", ("a.png", image_bytes(), "image/png"))], {"weight": "not json"}, "weight"),
        ([("image", ("a.png", image_bytes(), "image/png"))], {"reduction": "max"}, "reduction"),
        ([("image", (f"{i}.png", image_bytes(), "image/png")) for i in range(65)], {}, "64"),
        ([], {"label": "cat"}, "image"),
    ],
)
def test_predict_bad_input(client: TestClient, files, data, needle: str) -> None:
    r = client.post("/predict", files=files, data=data)
    assert 400 <= r.status_code < 500, r.text
    assert needle in json.dumps(r.json()["detail"])


def test_uploads_are_never_spooled_to_disk(client: TestClient, monkeypatch) -> None:
    def refuse(self):
        raise AssertionError("an upload was written to disk")

    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "rollover", refuse)
    noise = Image.frombytes(
        "RGB",
        (1200, 1200),
        torch.randint(0, 256, (1200 * 1200 * 3,), dtype=torch.uint8).numpy().tobytes(),
    )
    buffer = io.BytesIO()
    noise.save(buffer, format="PNG")
    assert len(buffer.getvalue()) > 2_000_000
    r = client.post("/predict", files=[("image", ("big.png", buffer.getvalue(), "image/png"))])
    assert r.status_code == 200, r.text


def test_health_classes_model_docs(client: TestClient) -> None:
    health = client.get("/health").json()
    assert (
        health["status"] == "ok"
        and health["device"] == "cpu"
        and health["torch"] == torch.__version__
    )
    assert client.get("/classes").json() == {"classes": list(CLASSES)}
    card = client.get("/model").json()
    assert card["parameters"] == 62006
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/static/vendor/swagger-ui/swagger-ui-bundle.js" in docs.text
    assert "http" not in docs.text.replace("http-equiv", "")
    assert client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200
    schema = client.get("/openapi.json").json()
    assert schema["paths"]["/loss"]["post"]["requestBody"]["content"]["application/json"]["schema"][
        "examples"
    ]


def test_integer_probabilities_are_probabilities(client: TestClient) -> None:
    r = client.post("/loss", json={"logits": [[1.0, 2.0, 0.5]], "target": [[0, 1, 0]]})
    assert r.status_code == 200, r.text
    loss, _ = reference([[1.0, 2.0, 0.5]], [[0.0, 1.0, 0.0]])
    assert close(r.json()["loss"], loss) and r.json()["one_hot"] is None


def test_predict_empty_label_means_use_the_prediction(client: TestClient) -> None:
    files = [("image", (f"{i}.png", image_bytes((i * 80, 40, 0)), "image/png")) for i in range(2)]
    r = client.post("/predict", files=files, data={"label": ["", "frog"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["target_source"] == "mixed"
    first, second = body["images"]
    assert first["label"] is None and first["target"] == body["predicted"][0]
    assert second["label"] == 6 and second["target"] == 6
    loss, _ = reference(body["logits"], [body["predicted"][0], 6])
    assert close(body["loss"], loss)


def test_predict_pixel_budget_is_checked_before_decoding(client: TestClient, settings) -> None:
    big = image_bytes(size=(5000, 5000))  # 25 megapixels each, a small file
    files = [("image", (f"{i}.png", big, "image/png")) for i in range(5)]
    r = client.post("/predict", files=files)
    assert r.status_code == 422
    assert f"{settings.max_request_pixels:,}" in r.json()["detail"]


def test_predict_label_smoothing_must_be_finite(client: TestClient) -> None:
    files = [("image", ("a.png", image_bytes(), "image/png"))]
    r = client.post("/predict", files=files, data={"label_smoothing": "nan"})
    assert r.status_code == 422
    assert "label_smoothing" in json.dumps(r.json()["detail"])


@pytest.mark.parametrize("lane", [1, 2])
def test_large_requests_queue_for_the_compute_lane(settings, monkeypatch, lane: int) -> None:
    """Requests too large for the event loop run on at most compute_threads threads at once,
    and never on the loop itself."""
    import asyncio
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from app.web import api, service
    from tests.conftest import build_app

    running, most, on_loop = 0, 0, []
    lock = threading.Lock()
    work = service.loss_answer

    def spy(*args):
        nonlocal running, most
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.1)
        with lock:
            running -= 1
        return work(*args)

    monkeypatch.setattr(service, "loss_answer", spy)
    rows = api.INLINE_JSON_BYTES // 60 + 1  # over the inline size in any number format
    body = {"logits": [[0.123456] * 10] * rows, "target": [1] * rows, "fields": ["loss"]}
    app = build_app(settings.model_copy(update={"compute_threads": lane}))
    with TestClient(app) as client, ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: client.post("/loss", json=body), range(4)))
    assert [a.status_code for a in answers] == [200] * 4
    assert on_loop == [False] * 4
    assert most == lane


# Everything that needs no picture is checked before any picture is read ------------------------


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"label": ["cat", "unicorn", "dog"]}, "label 1 ('unicorn') is not a CIFAR-10 class"),
        ({"label": ["cat", "10", "dog"]}, "label 1 ('10') is not a CIFAR-10 class"),
        ({"label": ["cat", "dog"]}, "got 2 labels for 3 images"),
        ({"weight": "[1, 2]"}, "weight must be a list of 10 numbers"),
        ({"weight": "not json"}, "weight: expected a JSON array"),
        ({"weight": json.dumps([1.0] * 9 + [float("inf")])}, "weight"),
    ],
)
def test_predict_checks_labels_and_weight_before_reading_any_picture(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, data: dict, needle: str
) -> None:
    """Three 2000x2000 PNGs with a bad label or weight: a 422 without a header read, let alone
    a picture decoded or the Net run."""
    from app.web import service

    read: list[str] = []
    real = service.open_upload

    def spy(data: bytes, name: str, **kwargs: Any) -> Any:
        read.append(name)
        return real(data, name, **kwargs)

    monkeypatch.setattr(service, "open_upload", spy)
    big = image_bytes(size=(2000, 2000))
    files = [("image", (f"{i}.png", big, "image/png")) for i in range(3)]
    r = client.post("/predict", files=files, data=data)
    assert r.status_code == 422 and needle in r.json()["detail"], r.text
    assert read == []


def test_predict_label_indices_run_to_9(client: TestClient) -> None:
    files = [("image", (f"{i}.png", image_bytes(), "image/png")) for i in range(2)]
    r = client.post("/predict", files=files, data={"label": ["0", "9"]})
    assert r.status_code == 200, r.text
    assert [image["label"] for image in r.json()["images"]] == [0, 9]


def test_image_count_and_request_pixel_caps_hold_at_the_limit_exactly(settings) -> None:
    """At the cap is allowed, one over is not: 3 images of 4x5 pixels under caps of 3 images
    and 60 pixels; then a fourth image; then 61 pixels."""
    from tests.conftest import build_app

    capped = settings.model_copy(update={"max_images": 3, "max_request_pixels": 60})
    picture = image_bytes(size=(4, 5))
    files = [("image", (f"{i}.png", picture, "image/png")) for i in range(3)]
    with TestClient(build_app(capped)) as client:
        assert client.post("/predict", files=files).status_code == 200
        four = [*files, ("image", ("3.png", picture, "image/png"))]
        r = client.post("/predict", files=four)
        assert r.status_code == 422 and "at most 3 per request" in r.json()["detail"]
        one_more = [*files[:2], ("image", ("w.png", image_bytes(size=(3, 7)), "image/png"))]
        r = client.post("/predict", files=one_more)  # 20 + 20 + 21 = 61 pixels
        assert r.status_code == 422 and "61 pixels together; at most 60" in r.json()["detail"]


def test_many_errors_are_summed_up(client: TestClient) -> None:
    """At most 10 errors are listed, then how many more there are; a long key is cut."""
    extra = {f"{'k' * 100}{i}": i for i in range(12)}
    r = client.post("/loss", json={"logits": [1.0, 2.0], "target": 0, **extra})
    assert r.status_code == 422
    body = r.json()
    assert (
        body["detail"] == f"{'k' * 40}...: extra inputs are not permitted (and 11 more problems)."
    )
    assert (body["code"], body["params"]["field"]) == ("field_unknown", "k" * 40 + "...")
    errors = body["errors"]
    assert [e["type"] for e in errors] == ["extra_forbidden"] * 10 + ["more_errors"]
    assert errors[0]["loc"] == ["body", "k" * 40 + "..."]
    assert errors[-1]["msg"] == "2 more errors not shown"


def test_unknown_fields_are_named_shortened_and_counted(client: TestClient) -> None:
    fields = ["loss", "x" * 100, *(f"f{i}" for i in range(6))]
    r = client.post("/loss", json={"logits": [1.0, 2.0], "target": 0, "fields": fields})
    assert r.status_code == 422
    x = "'" + "x" * 17 + "..." + "x" * 18 + "'"  # reprlib's middle elision at 40 characters
    named = f"unknown fields {x}, 'f0', 'f1', 'f2', 'f3' and 2 more;"
    assert r.json()["detail"].startswith(named)


def test_only_routes_that_take_the_request_alone_skip_fastapis_handler() -> None:
    """LeanRoute answers /loss, /predict and /step with the endpoint itself; a route with
    parameters or dependencies keeps FastAPI's handler, which solves them."""
    from app.web import api

    lean = {
        route.path
        for route in api.router.routes
        if isinstance(route, APIRoute) and route.get_route_handler() is route.endpoint
    }
    assert lean == {"/loss", "/predict", "/step"}
    assert not api.takes_the_request_alone(api.health)  # a dependency
    assert not api.takes_the_request_alone(api.evaluate)  # a file part and dependencies
    assert not api.takes_the_request_alone(api.classes)  # a plain function answering a dict
