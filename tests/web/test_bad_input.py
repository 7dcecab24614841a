"""A catalogue of bad input over HTTP, in process: each gets a fast 4xx saying what is wrong.

Malformed, hostile and oversized JSON and multipart bodies. Every entry is checked the same way:
the status, a JSON `detail` that mentions the problem, an answer well within a hang guard, and a
/health that still answers afterwards. tests/web/test_api.py holds a first set; these extend it.
"""

import asyncio
import io
import json
import struct
import time
import tomllib
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from packaging.version import Version
from PIL import EpsImagePlugin, Image

from app.web.settings import Settings
from tests.conftest import HANG_GUARD_S, build_app, image_bytes

ROOT = Path(__file__).resolve().parents[2]
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def app(settings: Settings) -> FastAPI:
    return build_app(settings)


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    # A server error is an answer to look at (a 500), not an exception in the test.
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


# Inputs ------------------------------------------------------------------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height 8-bit grey pixels; its data is one row."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    row = zlib.compress(b"\x00" * (width + 1))
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", row)
        + png_chunk(b"IEND", b"")
    )


def blank_png(width: int, height: int, mode: str = "1") -> bytes:
    """A real, complete, highly compressible PNG: a 1-bit 10000x10000 one is about 12 kB."""
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


def encoded(fmt: str, size: tuple[int, int] = (64, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buffer, format=fmt)
    return buffer.getvalue()


EPS = (
    b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 32 32\n%%EndComments\n"
    b"newpath 0 0 moveto 32 32 lineto stroke\nshowpage\n%%EOF\n"
)
# The DOS EPS binary header: magic, offset and length of the PostScript, no WMF or TIFF preview.
DOS_EPS = b"\xc5\xd0\xd3\xc6" + struct.pack("<6I", 30, len(EPS), 0, 0, 0, 0) + b"\xff\xff" + EPS
PDF = b"%PDF-1.7\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def one(name: str, data: bytes, content_type: str = "image/png") -> list[tuple[str, Any]]:
    return [("image", (name, data, content_type))]


def multipart(boundary: bytes, *parts: bytes, end: bytes = b"--\r\n") -> bytes:
    """A hand-made multipart body: each part is its header lines, a blank line, then data."""
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts)
    return body + b"--" + boundary + end


def image_part(name: bytes = b"a.png", data: bytes = b"", headers: bytes = b"") -> bytes:
    disposition = b'Content-Disposition: form-data; name="image"; filename="' + name + b'"\r\n'
    return disposition + b"Content-Type: image/png\r\n" + headers + b"\r\n" + (data or PNG)


def mp(boundary: str) -> dict[str, str]:
    return {"content-type": f"multipart/form-data; boundary={boundary}"}


def nested(depth: int, inner: bytes = b"1") -> bytes:
    return b"[" * depth + inner + b"]" * depth


PNG = image_bytes()
JPEG = image_bytes(size=(300, 300), fmt="JPEG")
BIG_PNG = image_bytes(size=(300, 300))


@dataclass(frozen=True)
class Bad:
    """One entry: how to send it, and the answer it must get."""

    name: str
    path: str
    request: Callable[[], dict[str, Any]]  # keyword arguments of TestClient.post, built lazily
    status: int
    needle: str  # found, case-insensitively, in the JSON detail


def raw(path: str, name: str, body: bytes, status: int, needle: str, **headers: str) -> Bad:
    return Bad(
        name, path, lambda: {"content": body, "headers": {**JSON, **headers}}, status, needle
    )


def loss(name: str, payload: Any, status: int, needle: str) -> Bad:
    return Bad(name, "/loss", lambda: {"json": payload}, status, needle)


def form(name: str, files: Any, data: dict[str, Any], status: int, needle: str) -> Bad:
    return Bad(name, "/predict", lambda: {"files": files, "data": data}, status, needle)


def predict(name: str, body: bytes, headers: dict[str, str], status: int, needle: str) -> Bad:
    return Bad(name, "/predict", lambda: {"content": body, "headers": headers}, status, needle)


def with_png(**data: Any) -> tuple[Any, dict[str, Any]]:
    return one("a.png", PNG), data


OK = [1.0, 2.0]  # logits that are fine, for entries about another field
UNKNOWN_KEYS = dict.fromkeys((f"k{i}" for i in range(100_000)), 1)

CATALOGUE: list[Bad] = [
    # JSON syntax: nesting, non-finite literals, numbers too big for a double, encodings
    raw("/loss", "objects nested 100,000 deep", b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        400, "depth limit"),
    raw("/loss", "logits nested 100,000 deep", b'{"logits":' + nested(100_000) + b',"target":0}',
        400, "depth limit"),
    raw("/loss", "logits nested 1,000 deep", b'{"logits":' + nested(1000) + b',"target":0}',
        422, "too deeply nested"),
    raw("/loss", "-Infinity literal", b'{"logits":[-Infinity,1],"target":0}', 400, "json"),
    raw("/loss", "nan literal", b'{"logits":[nan,1],"target":0}', 400, "json"),
    raw("/loss", "integer of 5,000 digits", b'{"logits":[' + b"9" * 5000 + b',1],"target":0}',
        400, "infinity"),
    raw("/loss", "1e400 as label_smoothing", b'{"logits":[1,2],"target":0,"label_smoothing":1e400}',
        400, "infinity"),
    raw("/loss", "invalid UTF-8", b'{"logits":[1,2],"target":0,"x":"\xff"}', 400, "utf-8"),
    raw("/loss", "UTF-16 body", '{"logits":[1,2],"target":0}'.encode("utf-16"), 400, "json"),
    raw("/loss", "unpaired surrogate escape", b'{"logits":[1,2],"target":0,"fields":["\\ud800"]}',
        400, "surrogate"),
    raw("/loss", "multipart body to /loss", multipart(b"x", image_part()), 400, "json",
        **mp("x")),
    raw("/loss", "JSON null body", b"null", 422, "dictionary"),
    raw("/loss", "duplicate key, the last one counts", b'{"logits":[1,2],"target":0,"target":5}',
        422, "target 5"),
    # numbers out of range
    loss("NaN as a string", {"logits": ["NaN", 1.0], "target": 0}, 422, "string"),
    loss("ignore_index 2**70", {"logits": OK, "target": 0, "ignore_index": 2**70},
         422, "ignore_index"),
    loss("label_smoothing 1e308", {"logits": OK, "target": 0, "label_smoothing": 1e308},
         422, "label_smoothing"),
    loss("target 2**64", {"logits": OK, "target": 2**64}, 422, "target"),
    # a wrong type at every field
    loss("logits an object", {"logits": {"a": 1}, "target": 0}, 422, "logits: expected numbers"),
    loss("logits null", {"logits": None, "target": 0}, 422, "logits: expected numbers, got null"),
    loss("logits booleans", {"logits": [True, False], "target": 0}, 422, "got true"),
    loss("logits a string", {"logits": "1,2", "target": 0}, 422, "logits: expected numbers"),
    loss("target null", {"logits": OK, "target": None}, 422, "target: expected numbers"),
    loss("target an object", {"logits": OK, "target": {"c": 1}}, 422, "target: expected"),
    loss("target booleans", {"logits": [OK], "target": [True]}, 422, "got true"),
    loss("weight a string", {"logits": OK, "target": 0, "weight": "[1, 2]"}, 422, "weight"),
    loss("weight an object", {"logits": OK, "target": 0, "weight": {"a": 1}}, 422, "weight"),
    loss("weight nested", {"logits": OK, "target": 0, "weight": [[1, 2]]}, 422, "weight"),
    loss("weight of nulls", {"logits": OK, "target": 0, "weight": [None, None]}, 422, "weight"),
    loss("weight of strings", {"logits": OK, "target": 0, "weight": ["a", "b"]}, 422, "weight"),
    loss("ignore_index true", {"logits": OK, "target": 0, "ignore_index": True},
         422, "ignore_index"),
    loss("ignore_index a string", {"logits": OK, "target": 0, "ignore_index": "1"},
         422, "ignore_index"),
    loss("ignore_index null", {"logits": OK, "target": 0, "ignore_index": None},
         422, "ignore_index"),
    loss("reduction a number", {"logits": OK, "target": 0, "reduction": 1}, 422, "reduction"),
    loss("reduction in capitals", {"logits": OK, "target": 0, "reduction": "MEAN"},
         422, "reduction"),
    loss("reduction a list", {"logits": OK, "target": 0, "reduction": ["mean"]},
         422, "reduction"),
    loss("label_smoothing a string", {"logits": OK, "target": 0, "label_smoothing": "0.1"},
         422, "label_smoothing"),
    loss("label_smoothing true", {"logits": OK, "target": 0, "label_smoothing": True},
         422, "label_smoothing"),
    loss("label_smoothing null", {"logits": OK, "target": 0, "label_smoothing": None},
         422, "label_smoothing"),
    loss("fields a string", {"logits": OK, "target": 0, "fields": "loss"}, 422, "fields"),
    loss("fields of numbers", {"logits": OK, "target": 0, "fields": [1]}, 422, "fields"),
    loss("fields an object", {"logits": OK, "target": 0, "fields": {"loss": 1}}, 422, "fields"),
    loss("20,000 unknown fields of 100 characters",
         {"logits": OK, "target": 0, "fields": ["x" * 100] * 20_000}, 422, "unknown fields"),
    loss("fields of a million numbers", {"logits": OK, "target": 0, "fields": [1] * 1_000_000},
         422, "fields"),
    loss("100,000 unknown keys", {"logits": OK, "target": 0, **UNKNOWN_KEYS}, 422, "extra inputs"),
    loss("a key of 1 MB", {"logits": OK, "target": 0, "k" * 1_000_000: 1}, 422, "extra inputs"),
    loss("body a string", "hello", 422, "dictionary"),
    loss("body true", True, 422, "dictionary"),
    # ragged shapes
    loss("ragged inner rows", {"logits": [[[1.0], [2.0, 3.0]]], "target": [[0, 0]]},
         422, "ragged"),
    loss("list beside a number", {"logits": [[1.0], 2.0], "target": [0, 0]}, 422, "ragged"),
    loss("ragged target", {"logits": [OK, OK], "target": [[0], 1]}, 422, "ragged"),
    loss("ragged probabilities", {"logits": [OK, OK], "target": [[0.5, 0.5], [1.0]]},
         422, "ragged"),
    # pictures that must never be decoded in full, or at all
    form("PNG claiming 50000x50000", one("bomb.png", png_claiming(50_000, 50_000)), {},
         422, "too large"),
    form("10000x10000 PNG of 12 kB", one("bomb.png", blank_png(10_000, 10_000)), {},
         422, "too large"),
    form("one pixel over the pixel cap", one("big.png", blank_png(6325, 6325)), {},
         422, "too large"),
    form("truncated PNG", one("cut.png", BIG_PNG[: len(BIG_PNG) // 2]), {}, 422, "damaged"),
    form("truncated JPEG", one("cut.jpg", JPEG[: len(JPEG) // 2], "image/jpeg"), {},
         422, "damaged"),
    form("PNG with a broken CRC", one("crc.png", PNG[:29] + b"\0\0\0\0" + PNG[33:]), {},
         422, "not a PNG"),
    form("EPS named .png", one("a.png", EPS), {}, 422, "not a PNG"),
    form("DOS EPS binary", one("a.eps", DOS_EPS, "application/postscript"), {},
         422, "not a PNG"),
    form("PDF", one("a.pdf", PDF, "application/pdf"), {}, 422, "not a PNG"),
    form("TIFF", one("a.tif", encoded("TIFF"), "image/tiff"), {}, 422, "not a PNG"),
    form("ICO", one("a.ico", encoded("ICO"), "image/x-icon"), {}, 422, "not a PNG"),
    form("SVG with a script", one("a.svg", SVG, "image/svg+xml"), {}, 422, "not a PNG"),
    form("HTML posing as PNG", one("a.png", b"<!doctype html><p>hi"), {}, 422, "not a PNG"),
    form("empty file", one("a.png", b""), {}, 422, "empty"),
    form("junk named <script>", one("<script>alert(1)</script>.png", b"junk"), {},
         422, "<script>alert(1)</script>.png: not a PNG"),
    # bodies over the cap
    predict("Content-Length over the cap", b"x",
            {**mp("x"), "content-length": str(50 * 1024 * 1024 + 1)}, 413, "limit"),
    predict("Content-Length not a number", b"x", {**mp("x"), "content-length": "12abc"},
            400, "content-length"),
    # broken multipart
    predict("multipart without a boundary", multipart(b"x", image_part()),
            {"content-type": "multipart/form-data"}, 400, "boundary"),
    predict("boundary that is not in the body", multipart(b"y", image_part()), mp("x"),
            400, "multipart"),
    predict("empty boundary", multipart(b"x", image_part()),
            {"content-type": "multipart/form-data; boundary="}, 400, "multipart"),
    predict("1 MB of junk before the boundary", b"x" * 1_000_000 + multipart(b"x", image_part()),
            mp("x"), 400, "multipart"),
    predict("no closing boundary", multipart(b"x", image_part(), end=b""), mp("x"),
            422, "image"),
    predict("10,000 headers in one part",
            multipart(b"x", image_part(headers=b"X-A: b\r\n" * 10_000)), mp("x"),
            400, "multipart"),
    predict("part header of 1 MB",
            multipart(b"x", image_part(headers=b"X-A: " + b"b" * 1_000_000 + b"\r\n")), mp("x"),
            400, "multipart"),
    predict("part without a name", multipart(b"x", b'Content-Disposition: form-data\r\n\r\nx'),
            mp("x"), 400, "name"),
    predict("garbage as multipart", b"\x00" * 1000, mp("x"), 400, "multipart"),
    form("10,000 form fields", one("a.png", PNG), {"label": ["cat"] * 10_000}, 400, "fields"),
    form("1,001 files", [("image", (f"{i}.png", b"x", "image/png")) for i in range(1001)], {},
         400, "files"),
    form("a 2 MB label", one("a.png", PNG), {"label": "c" * 2_000_000}, 400, "maximum size"),
    # the wrong content type
    Bad("JSON to /predict", "/predict", lambda: {"json": {"image": "a.png"}}, 422, "image"),
    Bad("form-urlencoded to /predict", "/predict", lambda: {"data": {"image": "x"}},
        422, "UploadFile"),
    predict("raw PNG body", PNG, {"content-type": "image/png"}, 422, "image"),
    predict("text/plain body", b"hello", {"content-type": "text/plain"}, 422, "image"),
    # labels that are not classes, and bad options
    form("label in superscript digits", *with_png(label="³"), 422, "not a CIFAR-10 class"),
    form("label in Arabic-Indic digits", *with_png(label="٣"), 422, "not a CIFAR-10 class"),
    form("label of 5,000 digits", *with_png(label="9" * 5000), 422, "not a CIFAR-10 class"),
    form("label -1", *with_png(label="-1"), 422, "not a CIFAR-10 class"),
    form("weight nested 100,000 deep", *with_png(weight="[" * 100_000), 422, "weight"),
    form("weight of NaN", *with_png(weight=json.dumps([float("nan")] * 10)), 422, "weight"),
    form("weight of 1e400", *with_png(weight="[" + ",".join(["1e400"] * 10) + "]"),
         422, "weight"),
    form("weight an object", *with_png(weight='{"a": 1}'), 422, "weight"),
    form("label_smoothing nan", *with_png(label_smoothing="nan"), 422, "label_smoothing"),
    form("label_smoothing inf", *with_png(label_smoothing="inf"), 422, "label_smoothing"),
    form("reduction in capitals", *with_png(reduction="MEAN"), 422, "reduction"),
]  # fmt: skip


def answer(client: TestClient, bad: Bad) -> tuple[int, Any, float]:
    """Send the entry; return status, JSON detail and seconds taken."""
    kwargs = bad.request()
    start = time.perf_counter()
    response = client.post(bad.path, **kwargs)
    elapsed = time.perf_counter() - start
    assert response.headers["content-type"] == "application/json", response.text[:200]
    return response.status_code, response.json()["detail"], elapsed


@pytest.mark.parametrize("bad", CATALOGUE, ids=[bad.name for bad in CATALOGUE])
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_bad_input_gets_a_fast_4xx_saying_what_is_wrong(client: TestClient, bad: Bad) -> None:
    status, detail, elapsed = answer(client, bad)
    assert (status, elapsed < HANG_GUARD_S) == (bad.status, True), (status, elapsed, detail)
    text = json.dumps(detail, ensure_ascii=False).lower()
    assert detail and bad.needle.lower() in text, detail
    assert len(text) < 2000  # the input is never echoed back in full
    assert client.get("/health").json()["status"] == "ok"


def test_body_streamed_past_the_upload_cap_is_413(client: TestClient, settings: Settings) -> None:
    chunk = b"\0" * (1024 * 1024)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(settings.max_upload_bytes // len(chunk) + 2):
            yield chunk

    start = time.perf_counter()
    response = client.post("/predict", content=chunks(), headers=mp("x"))
    assert response.status_code == 413 and "limit" in response.json()["detail"]
    assert time.perf_counter() - start < HANG_GUARD_S
    assert client.get("/health").status_code == 200


def test_pictures_of_many_pixels_are_never_decoded_on_the_event_loop(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A few kB can declare millions of pixels, seconds of decoding: that must happen off the
    event loop, or every other request waits for it."""
    from app.web import service

    on_loop: list[bool] = []
    decode = service.decode

    def spy(*args: Any, **kwargs: Any) -> Any:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:  # a worker thread: no event loop here
            on_loop.append(False)
        return decode(*args, **kwargs)

    monkeypatch.setattr(service, "decode", spy)
    webp = io.BytesIO()
    Image.new("RGB", (2000, 2000)).save(webp, format="WEBP", lossless=True)
    small = [("webp.webp", webp.getvalue()), ("bits.png", blank_png(3000, 3000))]
    assert all(len(data) < 8 * 1024 for _, data in small)
    for name, data in small:
        assert client.post("/predict", files=one(name, data)).status_code == 200
    assert on_loop == [False, False]


def test_the_eps_plugin_is_never_invoked(client: TestClient, monkeypatch) -> None:
    """PostScript must never reach Pillow's EPS plugin, which would run Ghostscript on it."""
    assert EpsImagePlugin._accept(EPS) and EpsImagePlugin._accept(DOS_EPS)  # real EPS headers

    def explode(*args: object, **kwargs: object) -> None:
        raise AssertionError("the EPS plugin was invoked on an upload")

    Image.init()
    monkeypatch.setitem(Image.OPEN, "EPS", (EpsImagePlugin.EpsImageFile, explode))
    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", explode)
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", explode)
    monkeypatch.setattr("subprocess.Popen", explode)
    for name, data in [("a.eps", EPS), ("a.png", EPS), ("b.eps", DOS_EPS), ("b.jpg", DOS_EPS)]:
        response = client.post("/predict", files=one(name, data, "application/postscript"))
        assert response.status_code == 422, response.text
        assert "not a PNG" in response.json()["detail"]


def test_hostile_filenames_come_back_as_json_text(client: TestClient) -> None:
    """A valid picture under a hostile name is accepted; the name comes back as JSON text,
    without control or bidirectional-override characters, never as HTML."""
    response = client.post("/predict", files=one("<script>alert(1)</script>.png", PNG))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.json()["images"][0]["filename"] == "<script>alert(1)</script>.png"

    name = b"a\x00b\x1b[31m\xe2\x80\xaegnp.exe\x7f.png"  # NUL, ESC, RIGHT-TO-LEFT OVERRIDE, DEL
    response = client.post("/predict", content=multipart(b"x", image_part(name)), headers=mp("x"))
    assert response.status_code == 200, response.text
    assert response.json()["images"][0]["filename"] == "ab[31mgnp.exe.png"


def test_uploads_are_answered_as_json_even_to_browsers(client: TestClient) -> None:
    html = {"accept": "text/html"}
    for files in (one("<b>x</b>.png", PNG), one("<b>x</b>.png", b"junk")):
        response = client.post("/predict", files=files, data={"label": "<i>cat"}, headers=html)
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/json"
        assert response.headers["x-content-type-options"] == "nosniff"


# Headers on every HTML answer; nothing the user sent is echoed into HTML ----------------------

HTML_REQUESTS = [
    ("/", {}),
    ("/?lang=zh-CN", {}),
    ("/upload", {"accept-language": "zh-CN"}),
    ("/sandbox?z=<script>&t=1", {}),
    ("/model", {"accept": "text/html"}),
    ("/docs", {}),
]


@pytest.mark.parametrize(("path", "headers"), HTML_REQUESTS)
def test_every_html_answer_carries_the_security_headers(
    client: TestClient, path: str, headers: dict[str, str]
) -> None:
    response = client.get(path, headers=headers)
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    if not response.headers["content-type"].startswith("text/html"):
        return  # a JSON answer (GET /model to a client that prefers JSON)
    csp = dict(
        part.strip().split(" ", 1)
        for part in response.headers["content-security-policy"].split(";")
    )
    assert csp["frame-ancestors"] == "'none'" and csp["script-src"] == "'self'"
    assert csp["object-src"] == "'none'" and csp["base-uri"] == "'none'"
    assert "<script>&" not in response.text and "z=<script>" not in response.text


def test_json_errors_carry_nosniff(client: TestClient) -> None:
    too_big = b"[" * (10 * 1024 * 1024 + 1)  # refused by the body cap, before the app sees it
    for response in (
        client.get("/nope"),
        client.post("/loss", content=b"{"),
        client.post("/loss", content=too_big, headers={"content-type": "application/json"}),
    ):
        assert response.headers["content-type"] == "application/json"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.json()["detail"]


def test_scripts_never_parse_user_text_as_html() -> None:
    """Filenames and labels reach the page only through the JSON API; the page scripts put text
    into the DOM with textContent, never through an HTML parser."""
    for script in (ROOT / "static" / "js").glob("*.js"):
        source = script.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in source, f"{script.name} uses {sink}"


# The parsers that read untrusted bodies are at or past the releases with published fixes ----

# python-multipart: CVE-2024-24762 (0.0.7), CVE-2024-53981 (0.0.18), CVE-2026-24486 (0.0.22),
# CVE-2026-42561 (0.0.27), CVE-2026-53537/53538/53539 (0.0.30), CVE-2026-53540 (0.0.31).
# starlette: CVE-2024-47874 (0.40.0), CVE-2025-54121 (0.47.2), CVE-2025-62727 (0.49.1),
# CVE-2026-48710 (1.0.1), CVE-2026-54282/54283 (1.3.1).
FIXED = {"python-multipart": "0.0.31", "starlette": "1.3.1"}


@pytest.mark.parametrize(("package", "fixed"), FIXED.items())
def test_parsers_have_the_published_fixes(package: str, fixed: str) -> None:
    assert Version(version(package)) >= Version(fixed)
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (spec,) = [d for d in dependencies if d.split(">=")[0].strip() == package]
    assert Version(spec.split(">=")[1]) >= Version(fixed), spec


def test_security_headers_are_added_once_and_never_over_the_answers_own() -> None:
    """add_security_headers: an answer's own value of one of them is kept, not doubled; HTML
    answers get the HTML-only ones too, other answers only nosniff and the referrer policy."""
    from app.web.middleware.security import ALWAYS, HTML_ONLY, add_security_headers

    own = [(b"content-type", b"Text/HTML; charset=utf-8"), (b"referrer-policy", b"same-origin")]
    html: dict[str, Any] = {"type": "http.response.start", "status": 200, "headers": list(own)}
    add_security_headers(html)
    names = [name.decode() for name, _ in html["headers"]]
    expected = {"content-type", *(k.lower() for k in (*ALWAYS, *HTML_ONLY))}
    assert sorted(names) == sorted(expected)  # each once
    assert dict(html["headers"])[b"referrer-policy"] == b"same-origin"

    json: dict[str, Any] = {"type": "http.response.start", "status": 200}
    json["headers"] = [(b"content-type", b"x/y")]
    add_security_headers(json)
    assert {name.decode() for name, _ in json["headers"]} == {
        "content-type",
        *(k.lower() for k in ALWAYS),
    }
