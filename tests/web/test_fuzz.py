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
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from app.model import CLASSES
from app.web.app import create_app
from app.web.middleware.security import CSP
from app.web.settings import Settings

# Enough cases per operation to find things, few enough for CI on two cores.
FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)

# The app the schema is read from and the requests go to; the fixture below gives it random
# weights before its first request, so nothing here depends on training.
APP = create_app()
# Input that fits the schema can still be refused with a 422 saying why: shapes that do not
# match, bytes that are not a picture. Anything else (400, 413, a 5xx) for schema-valid input
# is a failure.
CONFIG = schemathesis.Config.from_dict(
    {"checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "422"]}}}
)
schema = schemathesis.openapi.from_dict(APP.openapi(), config=CONFIG)
schema.app = APP


@pytest.fixture(scope="module", autouse=True)
def fuzz_app(settings: Settings) -> Iterator[FastAPI]:
    """APP with the random-weights settings, its lifespan run (the model loaded) once."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(APP.state, "settings", settings)
        with TestClient(APP):
            yield APP


@pytest.fixture(scope="module")
def client(fuzz_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(fuzz_app, raise_server_exceptions=False) as c:
        yield c


def test_schema_covers_every_api_route() -> None:
    assert set(APP.openapi()["paths"]) == {"/loss", "/predict", "/classes", "/model", "/health"}


@schema.parametrize()
@FUZZ
def test_every_operation(case: schemathesis.Case) -> None:
    """Generated requests, valid and not: no 5xx, answers as declared, bad input a 4xx."""
    case.call_and_validate()


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
    if draw(st.booleans()):  # class indices, some out of range or ignored
        count = math.prod(batch_shape)
        index = st.one_of(st.integers(0, classes - 1), st.sampled_from([-100, -1, classes]))
        target = np.array(draw(st.lists(index, min_size=count, max_size=count)), dtype=object)
        body["target"] = target.reshape(batch_shape).tolist() if batch_shape else int(target[0])
    else:  # class probabilities, not always summing to 1
        prob = st.one_of(st.floats(0, 1), st.sampled_from([0.0, 1.0, -0.5, 2.0]))
        target = np.array(draw(st.lists(prob, min_size=size, max_size=size)), dtype=object)
        body["target"] = target.reshape(shape).tolist()
    if draw(st.booleans()):
        body["weight"] = draw(st.lists(WEIGHTS, min_size=classes, max_size=classes))
    if draw(st.booleans()):
        body["ignore_index"] = draw(st.sampled_from([-100, -1, 0, 1, 2**63 - 1, -(2**63)]))
    if draw(st.booleans()):
        body["reduction"] = draw(st.sampled_from(["mean", "sum", "none"]))
    if draw(st.booleans()):
        body["label_smoothing"] = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    if draw(st.booleans()):
        body["fields"] = draw(st.lists(st.sampled_from(["loss", "grad", "softmax", "warnings"])))
    return body


@FUZZ
@given(body=loss_bodies())
def test_loss_with_valid_layouts(body: dict[str, Any]) -> None:
    """Extreme but well-formed input: a 200 whose answer fits the schema, or a 422 saying why."""
    case = schema["/loss"]["POST"].Case(body=body, media_type="application/json")
    response = case.call_and_validate()
    event(f"status {response.status_code}")
    assert response.status_code in (200, 422), response.text
    answer = response.json()
    if response.status_code == 422:
        assert isinstance(answer["detail"], str | list) and answer["detail"]
        return
    if body.get("fields") is None:
        loss, torch_loss = answer["loss"], answer["torch_loss"]
        if isinstance(loss, float) and isinstance(torch_loss, float):
            assert math.isclose(loss, torch_loss, rel_tol=1e-6, abs_tol=1e-9), (loss, torch_loss)


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


@settings(FUZZ, max_examples=60)
@given(body=predict_forms())
def test_predict_with_real_pictures(body: dict[str, Any]) -> None:
    """Real pictures: a 200 whose answer fits the schema, or a 422 saying why."""
    case = schema["/predict"]["POST"].Case(body=body, media_type="multipart/form-data")
    response = case.call_and_validate()
    event(f"status {response.status_code}")
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        assert len(response.json()["images"]) == len(body["image"])
    else:
        assert response.json()["detail"]


# HTML pages, which the schema leaves out --------------------------------------------------------

PAGES = ["/", "/upload", "/sandbox", "/docs"]
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
