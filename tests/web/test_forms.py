"""A form read by app.web.forms gives what FastAPI's own Form and File parameters give.

The reference is FastAPI itself: one route declares /predict's fields as FastAPI parameters (as
/predict did before it read its form itself), the other reads the same form into PredictForm;
both answer the values they got, or the error. Every form below must get the same answer from
both, 422s and 400s included."""

import asyncio
import json
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.testclient import TestClient
from starlette.types import Message

from app.engine import Reduction
from app.web import errors
from app.web.api import PredictForm
from app.web.forms import read_form


def summary(
    image: list[UploadFile],
    label: list[str] | None,
    reduction: str,
    label_smoothing: float,
    weight: str | None,
    weights: UploadFile | None,
) -> dict[str, Any]:
    def file(part: UploadFile) -> list[Any]:
        return [part.filename, part.file.read().decode("latin-1")]

    return {
        "image": [file(part) for part in image],
        "label": label,
        "reduction": reduction,
        "label_smoothing": label_smoothing,
        "weight": weight,
        "weights": None if weights is None else file(weights),
    }


def reference_app() -> FastAPI:
    app = FastAPI()
    errors.install(app)

    @app.post("/fastapi")
    async def by_fastapi(
        image: Annotated[list[UploadFile], File()],
        label: Annotated[list[str] | None, Form()] = None,
        reduction: Annotated[Reduction, Form()] = "mean",
        label_smoothing: Annotated[float, Form(ge=0.0, le=1.0, allow_inf_nan=False)] = 0.0,
        weight: Annotated[str | None, Form()] = None,
        weights: Annotated[UploadFile | None, File()] = None,
    ) -> dict[str, Any]:
        return summary(image, label, reduction, label_smoothing, weight, weights)

    @app.post("/ours")
    async def ours(request: Request) -> dict[str, Any]:
        async with read_form(request) as form:
            f = PredictForm.of(form)
            return summary(f.image, f.label, f.reduction, f.label_smoothing, f.weight, f.weights)

    return app


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(reference_app(), raise_server_exceptions=False) as c:
        yield c


def picture(name: str = "a.png", data: bytes = b"png bytes") -> tuple[str, tuple[str, bytes, str]]:
    return ("image", (name, data, "image/png"))


def raw(*parts: tuple[str, str | None, bytes]) -> dict[str, Any]:
    """A multipart body of (name, filename or None, bytes) parts, written out by hand: httpx
    sends no filename="", which is what a browser sends for a file input left empty."""
    body = b"".join(
        b'--x\r\nContent-Disposition: form-data; name="%s"%s\r\n\r\n%s\r\n'
        % (name.encode(), b"" if filename is None else b'; filename="%s"' % filename.encode(), data)
        for name, filename, data in parts
    )
    return {
        "content": body + b"--x--\r\n",
        "headers": {"content-type": "multipart/form-data; boundary=x"},
    }


EMPTY_INPUT = ("", b"", "application/octet-stream")

FORMS: list[tuple[str, dict[str, Any]]] = [
    (
        "two pictures, labels",
        {"files": [picture(), picture("b.png")], "data": {"label": ["cat", "7"]}},
    ),
    (
        "every field",
        {
            "files": [picture(), ("weights", ("net.pth", b"weights", "application/octet-stream"))],
            "data": {
                "label": "dog",
                "reduction": "sum",
                "label_smoothing": "0.25",
                "weight": "[1]",
            },
        },
    ),
    ("no picture", {"data": {"label": "cat"}}),
    ("nothing", {"files": [("other", ("x", b"x", "text/plain"))]}),
    ("picture as a text field", {"data": {"image": "a.png"}}),
    ("picture as a text field beside a file", {"files": [picture()], "data": {"image": "a.png"}}),
    ("an empty filename, sent by httpx as a text field", {"files": [("image", EMPTY_INPUT)]}),
    ("an empty file input", raw(("image", "", b""))),
    ("an empty file input beside a picture", raw(("image", "", b""), ("image", "a.png", b"png"))),
    ("a picture of no name", raw(("image", "", b"png"))),
    ("a label not in UTF-8", raw(("image", "a.png", b"png"), ("label", None, b"\xff\xfe"))),
    ("a text field of no bytes", raw(("image", "a.png", b"png"), ("label", None, b""))),
    ("a picture of no bytes but a name", {"files": [picture("a.png", b"")]}),
    ("empty labels", {"files": [picture(), picture()], "data": {"label": ["", "cat"]}}),
    ("one empty label", {"files": [picture()], "data": {"label": ""}}),
    ("label as a file", {"files": [picture(), ("label", ("l.txt", b"cat", "text/plain"))]}),
    ("label_smoothing not a number", {"files": [picture()], "data": {"label_smoothing": "abc"}}),
    ("label_smoothing over 1", {"files": [picture()], "data": {"label_smoothing": "2"}}),
    ("label_smoothing below 0", {"files": [picture()], "data": {"label_smoothing": "-0.1"}}),
    ("label_smoothing nan", {"files": [picture()], "data": {"label_smoothing": "nan"}}),
    ("label_smoothing inf", {"files": [picture()], "data": {"label_smoothing": "inf"}}),
    ("label_smoothing empty", {"files": [picture()], "data": {"label_smoothing": ""}}),
    ("label_smoothing twice", {"files": [picture()], "data": {"label_smoothing": ["0.1", "0.2"]}}),
    (
        "label_smoothing as a file",
        {
            "files": [picture(), ("label_smoothing", ("s", b"0.1", "text/plain"))],
        },
    ),
    ("reduction unknown", {"files": [picture()], "data": {"reduction": "median"}}),
    ("reduction empty", {"files": [picture()], "data": {"reduction": ""}}),
    ("reduction in capitals", {"files": [picture()], "data": {"reduction": "SUM"}}),
    ("reduction twice", {"files": [picture()], "data": {"reduction": ["sum", "none"]}}),
    ("weight empty", {"files": [picture()], "data": {"weight": ""}}),
    ("weight as a file", {"files": [picture(), ("weight", ("w.json", b"[1]", "text/plain"))]}),
    ("weights as text", {"files": [picture()], "data": {"weights": "net.pth"}}),
    ("weights an empty file input", raw(("image", "a.png", b"png"), ("weights", "", b""))),
    ("weights of no bytes", raw(("image", "a.png", b"png"), ("weights", "w.pth", b""))),
    (
        "weights twice",
        {
            "files": [
                picture(),
                ("weights", ("1.pth", b"1", "x/y")),
                ("weights", ("2.pth", b"2", "x/y")),
            ],
        },
    ),
    (
        "many errors at once",
        {
            "data": {"label_smoothing": "x", "reduction": "y", "weights": "z", "image": "w"},
        },
    ),
    ("unknown fields", {"files": [picture()], "data": {"labels": "cat", "extra": "1"}}),
    ("JSON", {"json": {"image": "a.png", "label": "cat"}}),
    ("urlencoded", {"data": {"image": "a.png", "label_smoothing": "0.1"}}),
    ("text", {"content": b"hello", "headers": {"content-type": "text/plain"}}),
    ("no content type", {"content": b"hello"}),
    (
        "multipart without a boundary",
        {
            "content": b"--x\r\n",
            "headers": {"content-type": "multipart/form-data"},
        },
    ),
    (
        "multipart cut short",
        {
            "content": b'--x\r\nContent-Disposition: form-data; name="image"; filename="a"\r\n'
            b"\r\nab",
            "headers": {"content-type": "multipart/form-data; boundary=x"},
        },
    ),
    ("1,001 fields", {"files": [picture()], "data": {"label": ["cat"] * 1001}}),
]


@pytest.mark.parametrize("form", [form for _, form in FORMS], ids=[name for name, _ in FORMS])
def test_the_form_reads_as_fastapi_reads_it(client: TestClient, form: dict[str, Any]) -> None:
    expected = client.post("/fastapi", **form)
    got = client.post("/ours", **form)
    assert expected.status_code in (200, 400, 422), expected.text
    assert (got.status_code, got.json()) == (expected.status_code, expected.json())


def test_the_schema_lists_every_field() -> None:
    """/docs shows the form's fields as FastAPI showed them: the same properties and types."""
    app = reference_app()
    schemas = app.openapi()["components"]["schemas"]
    fastapi_schema = next(s for name, s in schemas.items() if name.startswith("Body_"))
    ours = PredictForm.openapi_body()["content"]["multipart/form-data"]["schema"]
    assert ours["required"] == fastapi_schema["required"] == ["image"]

    def types(schema: dict[str, Any]) -> dict[str, str]:
        return {
            name: json.dumps(
                {k: v for k, v in field.items() if k not in ("description", "default")},
                sort_keys=True,
            )
            for name, field in schema["properties"].items()
        }

    assert types(ours) == types(fastapi_schema)


def test_a_body_cut_short_is_a_400_as_with_fastapi() -> None:
    """The client leaves while its form is read: FastAPI's 400, for both."""
    app = reference_app()
    start = b'--x\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\nab'

    async def call(path: str) -> tuple[int, bytes]:
        sent: list[Message] = []
        incoming: list[Message] = [
            {"type": "http.request", "body": start, "more_body": True},
            {"type": "http.disconnect"},
        ]

        async def receive() -> Message:
            return incoming.pop(0)

        async def send(message: Message) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(b"content-type", b"multipart/form-data; boundary=x")],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        await app(scope, receive, send)
        status = next(m["status"] for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return status, body

    expected = asyncio.run(call("/fastapi"))
    assert expected[0] == 400
    assert asyncio.run(call("/ours")) == expected
