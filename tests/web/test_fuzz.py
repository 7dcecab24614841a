"""Schema-driven fuzzing: every route of the app's own OpenAPI schema, in process.

Schemathesis generates schema-valid and schema-violating requests for every operation and checks
each answer: never a 5xx, the status code and body declared in the schema, schema-violating input
rejected with a 4xx. The hypothesis tests below go further than random bytes can: /loss requests
with arrays of consistent shapes and extreme values, so that many of them reach the engine and
their answers are checked against the response schema; real pictures of every mode and format for
/predict; and query strings and headers for the HTML pages, which are not in the schema.
"""

import io
import json
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import schemathesis
import torch
import torch.nn.functional as F
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from app.model import CLASSES
from app.web.app import create_app
from app.web.middleware.security import CSP
from app.web.settings import Settings
from tests.conftest import build_app, derandomized, examples

# Enough cases per operation to find things, few enough for CI on two cores; derandomised or
# not, and how many more when exploring, as the hypothesis profile says (tests/conftest.py).
FUZZ = settings(
    max_examples=examples(120),
    suppress_health_check=list(HealthCheck),
)

# Input that fits the schema can still be refused with a 422 saying why: shapes that do not
# match, bytes that are not a picture. Anything else (400, 413, a 5xx) for schema-valid input
# is a failure. Schemathesis takes a seed of its own: fixed when the profile is derandomised.
CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "422"]}},
        **({"seed": 0} if derandomized() else {}),
    }
)


# The app's own OpenAPI document, which no setting changes, read at import from an app with the
# default settings (none read from APP_* variables or a .env file; it never starts). The app
# that answers is built from the test settings, below. (schemathesis.pytest.from_fixture would
# read the document from the fixture, but it does not run under pytest 9: it sets Node._nodeid.)
schema = schemathesis.openapi.from_dict(
    create_app(Settings.model_construct()).openapi(), config=CONFIG
)
# Each valid request would train a Net for up to a minute: tests/web/test_live_api.py fuzzes its
# options on tiny data instead.
schema = schema.exclude(path="/train/live")  # type: ignore[assignment]


@pytest.fixture(scope="module")
def fuzz_app(settings: Settings) -> Iterator[FastAPI]:
    """The app with the test settings (random weights), its lifespan run (the model loaded) once
    for the module; schemathesis sends its requests to it in process."""
    app = build_app(settings)
    with TestClient(app):
        yield app


@pytest.fixture(scope="module")
def client(fuzz_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(fuzz_app, raise_server_exceptions=False) as c:
        yield c


def test_schema_covers_every_api_route(fuzz_app: FastAPI) -> None:
    assert fuzz_app.openapi() == schema.raw_schema
    assert set(schema.raw_schema["paths"]) == {
        "/loss",
        "/predict",
        "/step",
        "/evaluate",
        "/classes",
        "/model",
        "/health",
        "/train/live",
        "/try",
    }


@schema.parametrize()
@FUZZ
def test_every_operation(fuzz_app: FastAPI, case: schemathesis.Case) -> None:
    """Generated requests, valid and not: no 5xx, answers as declared, bad input a 4xx."""
    case.call_and_validate(app=fuzz_app)


# /loss with arrays of consistent shapes -------------------------------------------------------

FLOATS = st.one_of(
    st.floats(-10, 10, allow_nan=False),
    st.sampled_from([0.0, -0.0, 1e-308, 5e-324, 1e308, -1e308, 1.7976931348623157e308, 700.0]),
    st.integers(-(2**63), 2**63 - 1),
)
WEIGHTS = st.one_of(st.floats(0, 10, allow_nan=False), st.sampled_from([0.0, -1.0, 1e308, 1e-308]))


@st.composite
def loss_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A /loss body whose logits have a valid layout: (C), (N, C) or (N, C, d1, ...)."""
    classes = draw(st.integers(1, 6))
    batch = draw(st.lists(st.integers(1, 3), max_size=3))  # () or (N,) or (N, d1, ...)
    shape = [classes] if not batch else [batch[0], classes, *batch[1:]]
    size = math.prod(shape)
    logits = np.array(draw(st.lists(FLOATS, min_size=size, max_size=size)), dtype=object)
    body: dict[str, Any] = {"logits": logits.reshape(shape).tolist()}
    batch_shape = [s for i, s in enumerate(shape) if i != (0 if len(shape) == 1 else 1)]
    # Half the bodies keep to what PyTorch accepts, so that many answers reach the comparison
    # with F.cross_entropy; the other half may break a rule (and should get a 422).
    strict = draw(st.booleans())
    indices = draw(st.booleans())
    if indices:  # class indices, some out of range or ignored
        count = math.prod(batch_shape)
        index = st.integers(0, classes - 1)
        if not strict:
            index = st.one_of(index, st.sampled_from([-100, -1, classes]))
        target = np.array(draw(st.lists(index, min_size=count, max_size=count)), dtype=object)
        body["target"] = target.reshape(batch_shape).tolist() if batch_shape else int(target[0])
    else:  # class probabilities, not always summing to 1
        prob = st.floats(0, 1) if strict else st.sampled_from([0.0, 1.0, -0.5, 2.0])
        target = np.array(draw(st.lists(prob, min_size=size, max_size=size)), dtype=object)
        body["target"] = target.reshape(shape).tolist()
    if draw(st.booleans()):
        body["weight"] = draw(st.lists(WEIGHTS, min_size=classes, max_size=classes))
    if (indices or not strict) and draw(st.booleans()):
        body["ignore_index"] = draw(st.sampled_from([-100, -1, 0, 1, 2**63 - 1, -(2**63)]))
    if draw(st.booleans()):
        body["reduction"] = draw(st.sampled_from(["mean", "sum", "none"]))
    if draw(st.booleans()):
        body["label_smoothing"] = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    if draw(st.booleans()):
        body["fields"] = draw(st.lists(st.sampled_from(["loss", "grad", "softmax", "warnings"])))
    return body


def reference_loss(body: dict[str, Any]) -> Any:
    """F.cross_entropy run here on the body, as JSON would carry it: NaN and inf as None."""
    target = np.asarray(body["target"])
    loss = F.cross_entropy(
        torch.tensor(body["logits"], dtype=torch.float64),
        torch.from_numpy(target.astype(np.int64 if target.dtype.kind == "i" else np.float64)),
        None if "weight" not in body else torch.tensor(body["weight"], dtype=torch.float64),
        ignore_index=body.get("ignore_index", -100),
        reduction=body.get("reduction", "mean"),
        label_smoothing=body.get("label_smoothing", 0.0),
    )
    return json.loads(json.dumps(loss.tolist()).replace("NaN", "null").replace("Infinity", "null"))


def same_numbers(got: Any, want: Any) -> bool:
    """Equal structure; numbers within 1e-12 of each other (relative; absolute near 0)."""
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(same_numbers, got, want))
    if want is None or got is None:
        return got is want
    return math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-300)


# Found by this test, and kept until the engine matches PyTorch here: with probability targets
# PyTorch multiplies log_probs by the target before the weight (cross_entropy_loss_prob_target
# in aten/src/ATen/native/LossNLL.cpp), the engine weight by target first, so an overflow to inf
# (or an inf times a zero weight, NaN) happens in one and not the other.


# Each option at least once whatever the draw: weighted 'mean', ignored positions with label
# smoothing, weighted probabilities over a K-dimensional batch, 'none' per position.
EVERY_OPTION: list[dict[str, Any]] = [
    {"logits": [[1.0, 2.0, 3.0], [0.5, 0.1, 0.2]], "target": [0, 2], "weight": [1.0, 2.0, 3.0]},
    {
        "logits": [[1.0, 2.0, 3.0], [0.5, 0.1, 0.2], [4.0, -1.0, 0.0]],
        "target": [0, 2, 1],
        "weight": [0.5, 2.0, 3.0],
        "ignore_index": 2,
        "label_smoothing": 0.1,
    },
    {
        "logits": [[[1.0, -1.0], [0.5, 2.0]], [[0.0, 3.0], [1.0, 1.0]]],
        "target": [[[0.25, 0.5], [0.75, 0.5]], [[1.0, 0.0], [0.0, 1.0]]],
        "weight": [0.5, 2.0],
        "label_smoothing": 0.2,
        "reduction": "sum",
    },
    {"logits": [[[1.0, -1.0], [0.5, 2.0]]], "target": [[1, 0]], "reduction": "none"},
]


@FUZZ
@given(body=loss_bodies())
@example(body=EVERY_OPTION[0])
@example(body=EVERY_OPTION[1])
@example(body=EVERY_OPTION[2])
@example(body=EVERY_OPTION[3])
@example(
    body={"logits": [0.0, 0.0, -1.0], "target": [0.0, 2.0, 0.0], "weight": [0.0, 1e308, 0.0]}
)  # PyTorch 1.72e308: (log p * q) * w, in that order
@example(
    body={"logits": [0.0, 0.0, 1e308], "target": [0.0, 2.0, 0.0], "weight": [0.0, 0.0, 0.0]}
)  # PyTorch NaN: 2 * -1e308 overflows before the weight 0
def test_loss_with_valid_layouts(fuzz_app: FastAPI, body: dict[str, Any]) -> None:
    """Extreme but well-formed input: a 200 whose answer fits the schema and whose loss is
    F.cross_entropy's, or a 422 saying why."""
    case = schema["/loss"]["POST"].Case(body=body, media_type="application/json")
    response = case.call_and_validate(app=fuzz_app)
    event(f"status {response.status_code}")
    assert response.status_code in (200, 422), response.text
    answer = response.json()
    if response.status_code == 422:
        assert isinstance(answer["detail"], str | list) and answer["detail"]
        return
    if "loss" in answer:
        event("loss compared with F.cross_entropy")
        expected = reference_loss(body)
        assert same_numbers(answer["loss"], expected), (body, answer["loss"], expected)


# /predict with real pictures ------------------------------------------------------------------

MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I", "F", "CMYK", "YCbCr"]
FORMATS = ["PNG", "JPEG", "GIF", "WEBP", "BMP"]


@st.composite
def pictures(draw: st.DrawFn) -> bytes:
    """A picture of any mode, size and allowed format, as its file's bytes."""
    width, height = draw(st.integers(1, 80)), draw(st.integers(1, 80))
    fmt = draw(st.sampled_from(FORMATS))
    mode = draw(st.sampled_from(MODES))
    seed = draw(st.integers(0, 2**32 - 1))
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    try:
        image = image.convert(mode)
    except ValueError:
        image = image.convert("RGB")
    if mode == "P" and draw(st.booleans()):
        image.info["transparency"] = 0
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt)
    except (OSError, ValueError, KeyError):  # a mode the format cannot store
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format=fmt)
    return buffer.getvalue()


LABELS = st.one_of(
    st.sampled_from(CLASSES),
    st.integers(0, 9).map(str),
    st.sampled_from(["Cat", " ship ", "10", "-1", "", "³", "٣", "9" * 5000, "<b>cat</b>"]),
    st.text(max_size=12),
)


@st.composite
def predict_forms(draw: st.DrawFn) -> dict[str, Any]:
    images = draw(st.lists(pictures(), min_size=1, max_size=4))
    body: dict[str, Any] = {"image": images}
    if draw(st.booleans()):
        count = len(images) if draw(st.integers(0, 4)) else draw(st.integers(1, 5))
        body["label"] = draw(st.lists(LABELS, min_size=count, max_size=count))
    if draw(st.booleans()):
        body["reduction"] = draw(st.sampled_from(["mean", "sum", "none"]))
    if draw(st.booleans()):
        body["label_smoothing"] = draw(st.sampled_from([0.0, 0.25, 1.0]))
    if draw(st.booleans()):
        weight = draw(st.lists(WEIGHTS, min_size=10, max_size=10))
        body["weight"] = draw(st.sampled_from([json.dumps(weight), "[1, 2]", "", "null", "{"]))
    return body


@settings(FUZZ, max_examples=examples(60))
@given(body=predict_forms())
def test_predict_with_real_pictures(fuzz_app: FastAPI, body: dict[str, Any]) -> None:
    """Real pictures: a 200 whose answer fits the schema, or a 422 saying why."""
    case = schema["/predict"]["POST"].Case(body=body, media_type="multipart/form-data")
    response = case.call_and_validate(app=fuzz_app)
    event(f"status {response.status_code}")
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        assert len(response.json()["images"]) == len(body["image"])
    else:
        assert response.json()["detail"]


# HTML pages, which the schema leaves out --------------------------------------------------------

PAGES = ["/", "/upload", "/sandbox", "/train", "/docs"]
PROBE = '"><x-probe onload=1>'
QUERY = st.dictionaries(
    st.sampled_from(["lang", "q", "image", "<x>", "lang[]"]),
    st.one_of(st.sampled_from(["en", "zh", "ZH-cn", "xx", "", PROBE]), st.text(max_size=20)),
    max_size=3,
)
ACCEPT_LANGUAGE = st.one_of(
    st.sampled_from(["", "zh-CN,zh;q=0.9", "en;q=abc", "*", ";;;,,,", "zh;q=1e400"]),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
)


@FUZZ
@given(path=st.sampled_from(PAGES), query=QUERY, accept_language=ACCEPT_LANGUAGE)
def test_pages_answer_any_query(
    client: TestClient, path: str, query: dict[str, str], accept_language: str
) -> None:
    """Any query string or Accept-Language: the page, with its security headers, never a 5xx."""
    response = client.get(path, params=query, headers={"accept-language": accept_language})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == CSP
    assert "<x-probe" not in response.text  # echoed, if at all, escaped
