"""A form read by app.web.forms gives what FastAPI's own Form and File parameters give.

The reference is FastAPI itself: one route declares /predict's (or /step's) fields as FastAPI
parameters, as the route did before it read its form itself, the other reads the same form into
PredictForm (StepForm); both answer the values they got, or the error. Every form below must get
the same answer from both, 422s and 400s included."""

from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from starlette.datastructures import FormData, Headers
from starlette.datastructures import UploadFile as StarletteUpload
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.types import Message

from app.engine import Reduction
from app.web import errors
from app.web.api import PredictForm, StepForm
from app.web.forms import FormModel, read_form, simple_multipart
from app.web.service import Init
from bench.inprocess import scope
from bench.payloads import Body, cifar_jpegs, multipart_body
from tests.conftest import examples, run_async


def summary(values: dict[str, Any]) -> dict[str, Any]:
    """The values a route got, files as [filename, their bytes as latin-1 text]."""

    def plain(value: Any) -> Any:
        if isinstance(value, list):
            return [plain(item) for item in value]
        if isinstance(value, StarletteUpload):
            return [value.filename, value.file.read().decode("latin-1")]
        return value

    return {name: plain(value) for name, value in values.items()}


def reference_app() -> FastAPI:
    """/fastapi/predict and /fastapi/step declare the forms' fields as FastAPI parameters, as
    the two routes did; /ours/predict and /ours/step read them as the routes now do."""
    app = FastAPI()
    errors.install(app)

    @app.post("/fastapi/predict")
    async def predict_by_fastapi(
        image: Annotated[list[UploadFile], File()],
        label: Annotated[list[str] | None, Form()] = None,
        reduction: Annotated[Reduction, Form()] = "mean",
        label_smoothing: Annotated[float, Form(ge=0.0, le=1.0, allow_inf_nan=False)] = 0.0,
        weight: Annotated[str | None, Form()] = None,
        weights: Annotated[UploadFile | None, File()] = None,
    ) -> dict[str, Any]:
        return summary(locals())

    @app.post("/fastapi/step")
    async def step_by_fastapi(
        image: Annotated[list[UploadFile], File()],
        label: Annotated[list[str] | None, Form()] = None,
        lr: Annotated[float, Form(gt=0.0, allow_inf_nan=False)] = 0.001,
        momentum: Annotated[float, Form(ge=0.0, lt=1.0, allow_inf_nan=False)] = 0.9,
        steps: Annotated[int, Form(ge=1, le=100)] = 1,
        init: Annotated[Init, Form()] = "served",
        seed: Annotated[int, Form(ge=0, le=2**32 - 1)] = 0,
        weights: Annotated[UploadFile | None, File()] = None,
    ) -> dict[str, Any]:
        return summary(locals())

    def reading(model: type[FormModel]) -> Callable[[Request], Awaitable[dict[str, Any]]]:
        async def ours(request: Request) -> dict[str, Any]:
            async with read_form(request) as form:
                return summary(dict(model.of(form)))

        return ours

    app.post("/ours/predict")(reading(PredictForm))
    app.post("/ours/step")(reading(StepForm))
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


STEP_FORMS: list[tuple[str, dict[str, Any]]] = [
    (
        "every field",
        {
            "files": [picture(), ("weights", ("net.pth", b"w", "application/octet-stream"))],
            "data": {
                "label": "cat",
                "lr": "0.1",
                "momentum": "0",
                "steps": "3",
                "init": "fresh",
                "seed": "7",
            },
        },
    ),
    *[
        (f"{name} {value!r}", {"files": [picture()], "data": {name: value}})
        for name, values in {
            "lr": ["0", "-1", "abc", "nan", "1e-3", "", "1e999"],
            "momentum": ["1", "0.99", "-0.1", "inf"],
            "steps": ["0", "101", "100", "1.5", "2.0", "abc", "", " 3"],
            "init": ["fresh", "Fresh", "none", ""],
            "seed": ["-1", "4294967295", "4294967296", "1e3", "0x10"],
        }.items()
        for value in values
    ],
    ("nothing", {"data": {"lr": "0.1"}}),
    ("many errors at once", {"data": {"lr": "x", "steps": "0", "init": "y", "weights": "z"}}),
]


@pytest.mark.parametrize(
    ("route", "form"),
    [("predict", form) for _, form in FORMS] + [("step", form) for _, form in STEP_FORMS],
    ids=[f"predict: {name}" for name, _ in FORMS] + [f"step: {name}" for name, _ in STEP_FORMS],
)
def test_the_form_reads_as_fastapi_reads_it(
    client: TestClient, route: str, form: dict[str, Any]
) -> None:
    expected = client.post(f"/fastapi/{route}", **form)
    got = client.post(f"/ours/{route}", **form)
    assert expected.status_code in (200, 400, 422), expected.text
    assert (got.status_code, got.json()) == (expected.status_code, expected.json())


@pytest.mark.parametrize(("route", "model"), [("predict", PredictForm), ("step", StepForm)])
def test_the_schema_lists_every_field(route: str, model: type[FormModel]) -> None:
    """/docs shows the form's fields as FastAPI showed them: the same properties and types."""
    schemas = reference_app().openapi()["components"]["schemas"]
    fastapi_schema = schemas[f"Body_{route}_by_fastapi_fastapi_{route}_post"]
    ours = model.openapi_body()["content"]["multipart/form-data"]["schema"]
    assert ours["required"] == fastapi_schema["required"] == ["image"]

    def types(schema: dict[str, Any]) -> dict[str, Any]:  # FastAPI writes its bounds as floats
        return {
            name: {k: v for k, v in field.items() if k not in ("description", "default")}
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

        await app(scope(path, Body(start, "multipart/form-data; boundary=x")), receive, send)
        status = next(m["status"] for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return status, body

    expected = run_async(call("/fastapi/predict"))
    assert expected[0] == 400
    assert run_async(call("/ours/predict")) == expected


# The split of small bodies (forms.simple_multipart) against Starlette's own parser ----------


def starlette_form(body: bytes, boundary: bytes) -> FormData | None:
    """What Starlette's parser makes of the body; None where it refuses it (a 400)."""
    headers = Headers({"content-type": "multipart/form-data; boundary=" + boundary.decode()})

    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    try:
        return run_async(MultiPartParser(headers, stream()).parse())
    except MultiPartException:
        return None


def described(form: FormData) -> list[Any]:
    def item(value: str | StarletteUpload) -> Any:
        if isinstance(value, str):
            return value
        data = value.file.read()
        value.file.seek(0)
        # _in_memory: whether UploadFile reads and closes it on the loop, not in a thread
        in_memory = value._in_memory
        return [value.filename, value.size, value.headers.raw, value.content_type, data, in_memory]

    return [(name, item(value)) for name, value in form.multi_items()]


BOUNDARIES = [b"x", b"----WebKitFormBoundary7MA4YWxkTrZu0gW", b"b-0"]
NAMES = st.one_of(
    st.sampled_from(["image", "label", "weights", "", "a b", "\u732b.png"]),
    st.text(st.characters(codec="utf-8"), max_size=8),  # quotes, semicolons, backslashes, ...
)
DATA = st.one_of(
    st.binary(max_size=40),
    st.lists(st.sampled_from([b"\r\n", b"--", b"x", b"b-0", b"\r\n--x", b"\r\n\r\n", b"\xff"])).map(
        b"".join
    ),
)


def mostly(plain: Any, *odd: Any) -> st.SearchStrategy[Any]:
    """`plain` seven times in eight, else one of `odd`: most bodies are plain throughout."""
    return st.sampled_from([plain] * 7 * len(odd) + list(odd))


@st.composite
def parts(draw: st.DrawFn) -> bytes:
    """A part as some client might write it: mostly plain, sometimes not."""
    name = draw(NAMES).encode()
    filename = draw(st.one_of(st.none(), NAMES))
    disposition = b'form-data; name="%s"' % name
    if filename is not None:
        disposition += b'; filename="%s"' % filename.encode()
    disposition = draw(
        mostly(disposition, disposition.replace(b"; ", b";"), b" " + disposition, b"form-data")
    )
    header = draw(mostly(b"Content-Disposition", b"content-disposition", b"CONTENT-DISPOSITION"))
    lines = [header + b": " + disposition]
    if draw(st.booleans()):
        kind = draw(
            mostly(b"image/png", b"text/plain; charset=latin-1", b" image/png", b"x ", b"", b"a\rb")
        )
        lines.append(
            draw(mostly(b"Content-Type", b"content-type", b"Content-Type ")) + b": " + kind
        )
    lines += draw(mostly([], [b"X-Extra: 1"], [b"Content-Length: 3"], [b"X Y: 1"], [b"bad"]))
    if draw(mostly(False, True)):
        lines.reverse()
    return b"\r\n".join(lines) + b"\r\n\r\n" + draw(DATA)


# Each of these is a body where a check the split makes is all that keeps it from Starlette's
# reading: Starlette refuses a CR in a header value and a space in a header's name, and drops
# the spaces before a value.
_FILE_PART = b'Content-Disposition: form-data; name="a"; filename="f"\r\n'


@example(b"x", [_FILE_PART + b"Content-Type: a\rb\r\n\r\ndata"], b"", b"--\r\n")
@example(b"x", [_FILE_PART + b"X Y: 1\r\n\r\ndata"], b"", b"--\r\n")
@example(b"x", [_FILE_PART + b"Content-Type:  image/png\r\n\r\ndata"], b"", b"--\r\n")
@settings(max_examples=examples(300), suppress_health_check=list(HealthCheck))
@given(
    boundary=st.sampled_from(BOUNDARIES),
    body_parts=st.lists(parts(), max_size=4),
    preamble=mostly(b"", b"\r\n", b"junk"),
    end=mostly(b"--\r\n", b"--", b"--\r\nepilogue", b"\r\n"),
)
def test_a_small_body_splits_as_starlette_parses_it(
    boundary: bytes, body_parts: list[bytes], preamble: bytes, end: bytes
) -> None:
    delimiter = b"--" + boundary
    body = preamble + b"".join(delimiter + b"\r\n" + p + b"\r\n" for p in body_parts)
    body += delimiter + end
    ours = simple_multipart(body, boundary)
    event("split" if ours is not None else "left to Starlette")
    if ours is not None:  # else Starlette's parser reads it
        expected = starlette_form(body, boundary)
        assert expected is not None and described(ours) == described(expected)


def test_what_clients_write_takes_the_short_way() -> None:
    """The bench's 32 JPEGs and labels, and what httpx writes for a form with every field."""
    pictures, _ = cifar_jpegs(32)
    body = multipart_body(pictures)
    boundary = body.content_type.split("boundary=")[1].encode()
    ours = simple_multipart(body.data, boundary)
    assert ours is not None and len(ours.getlist("image")) == 32
    expected = starlette_form(body.data, boundary)
    assert expected is not None and described(ours) == described(expected)

    request = httpx.Request(
        "POST",
        "http://test/predict",
        files=[("image", ("a.png", b"\x89PNG\r\n--x", "image/png")), ("weights", ("n.pth", b"w"))],
        data={"label": ["cat", ""], "reduction": "sum", "weight": "[1, 2]"},
    )
    body_bytes = request.read()
    boundary = request.headers["content-type"].split("boundary=")[1].encode()
    ours = simple_multipart(body_bytes, boundary)
    expected = starlette_form(body_bytes, boundary)
    assert ours is not None and expected is not None
    assert described(ours) == described(expected)


def test_too_many_fields_go_to_starlette() -> None:
    """Starlette's parser refuses a 1,001st field; the split leaves such a body to it."""
    plain = b'--x\r\nContent-Disposition: form-data; name="label"\r\n\r\ncat\r\n'
    assert simple_multipart(plain * 1000 + b"--x--\r\n", b"x") is not None
    assert simple_multipart(plain * 1001 + b"--x--\r\n", b"x") is None
    file = b'--x\r\nContent-Disposition: form-data; name="image"; filename="a"\r\n\r\n\r\n'
    assert simple_multipart(file * 1000 + b"--x--\r\n", b"x") is not None
    assert simple_multipart(file * 1001 + b"--x--\r\n", b"x") is None
