"""The gzip middleware: compresses what is asked for and worth it, nothing else, never twice."""

import asyncio
import gzip
import zlib
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.web.middleware import compression
from tests.conftest import run_async

BIG = {"logits": [[0.5] * 10] * 200, "target": [3] * 200}


def test_large_json_is_gzipped_when_accepted(client: TestClient) -> None:
    r = client.post("/loss", json=BIG, headers={"accept-encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in r.headers["vary"].lower()
    assert int(r.headers["content-length"]) < len(r.content)  # httpx decoded it
    assert r.json()["predicted"] == [0] * 200


@pytest.mark.parametrize(
    "accept", ["identity", "gzip;q=0", "br", "", "*, gzip;q=0", "gzip;q=0, *", "*;q=0", "gzip;q=x"]
)
def test_not_gzipped_unless_accepted(client: TestClient, accept: str) -> None:
    r = client.post("/loss", json=BIG, headers={"accept-encoding": accept})
    assert r.status_code == 200
    assert "content-encoding" not in r.headers
    assert int(r.headers["content-length"]) == len(r.content)


def test_small_answers_are_left_alone(client: TestClient) -> None:
    r = client.get("/classes", headers={"accept-encoding": "gzip"})
    assert "content-encoding" not in r.headers


def test_pages_are_gzipped(client: TestClient) -> None:
    r = client.get("/", headers={"accept-encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip"
    assert "<html" in r.text


def test_precompressed_assets_are_not_compressed_twice(client: TestClient) -> None:
    page = client.get("/docs").text
    assert "swagger-ui-bundle.js" in page
    with client.stream(
        "GET", "/static/vendor/swagger-ui/swagger-ui-bundle.js", headers={"accept-encoding": "gzip"}
    ) as r:
        raw = b"".join(r.iter_raw())
    assert r.headers["content-encoding"] == "gzip"
    assert gzip.decompress(raw).startswith(b"/*")  # one layer of gzip, then JavaScript


@pytest.mark.parametrize("accept", ["*", "br, *;q=0.1", "gzip;q=0.001", "GZIP", "x-gzip"])
def test_gzipped_when_any_acceptable_form_asks(client: TestClient, accept: str) -> None:
    r = client.post("/loss", json=BIG, headers={"accept-encoding": accept})
    assert r.headers["content-encoding"] == "gzip"


def test_big_answers_are_compressed_off_the_event_loop(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Answers of FAST_LEVEL_FROM_BYTES or more are compressed in a worker thread, at level 1."""
    compressed: list[tuple[bool, int]] = []
    real = zlib.compressobj

    def spy(level: int = -1, *args: Any) -> Any:
        try:
            asyncio.get_running_loop()
            compressed.append((True, level))
        except RuntimeError:  # a worker thread: no event loop here
            compressed.append((False, level))
        return real(level, *args)

    monkeypatch.setattr(zlib, "compressobj", spy)
    rows = compression.FAST_LEVEL_FROM_BYTES // 50
    big = {"logits": [[0.5] * 10] * rows, "target": [3] * rows}
    assert client.post("/loss", json=big, headers={"accept-encoding": "gzip"}).status_code == 200
    assert client.get("/", headers={"accept-encoding": "gzip"}).status_code == 200
    assert compressed == [(False, 1), (True, 6)]


def starlette_identity(start: dict[str, Any], body: dict[str, Any]) -> list[Any]:
    """What Starlette's own IdentityResponder sends for this answer: the reference."""
    from starlette.middleware.gzip import IdentityResponder

    sent: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({**start, "headers": list(start["headers"])})
        await send(dict(body))

    async def send(message: Any) -> None:
        sent.append(message)

    middleware = compression.GzipMiddleware(app)
    responder = IdentityResponder(
        app, middleware.minimum_size, exclude_content_types=compression.EXCLUDED
    )
    run_async(responder({"type": "http"}, None, send))  # type: ignore[arg-type]
    return sent


def head(start: dict[str, Any]) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for name, value in start["headers"]:
        out.setdefault(name.decode().lower(), []).append(value)
    return out


ANSWERS = [
    # (status, headers, body): what the app sends; the content-length is the body's
    (200, [(b"content-type", b"application/json")], b"x" * 27),
    (200, [(b"content-type", b"application/json")], b"x" * 1023),
    (200, [(b"content-type", b"application/json")], b"x" * 1024),
    (200, [(b"content-type", b"application/json"), (b"vary", b"Accept")], b"x" * 5000),
    (200, [(b"content-type", b"text/html"), (b"vary", b"a"), (b"vary", b"b")], b"x" * 2000),
    (200, [(b"content-type", b"image/png")], b"x" * 5000),
    (200, [(b"content-type", b"Image/PNG; name=x")], b"x" * 5000),
    (200, [(b"content-type", b"video/mp4")], b"x" * 5000),
    (200, [(b"content-type", b"application/grpc+proto")], b"x" * 5000),
    (200, [(b"content-type", b"application/x-npz")], b"x" * 5000),
    (200, [(b"content-type", b"text/plain"), (b"content-encoding", b"br")], b"x" * 5000),
    (206, [(b"content-type", b"text/plain")], b"x" * 5000),
    (200, [], b"x" * 5000),
]


@pytest.mark.parametrize(("status", "headers", "body"), ANSWERS)
def test_identity_answers_get_the_vary_that_starlettes_responder_gives(
    status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    """A client that takes no gzip gets, with the answer's own headers, the Vary Starlette's
    IdentityResponder adds: to answers that a client taking gzip would get compressed."""
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    start = {"type": "http.response.start", "status": status, "headers": headers}
    reference = starlette_identity(start, {"type": "http.response.body", "body": body})
    ours = {**start, "headers": list(headers)}
    compression.GzipMiddleware(None).identity_vary(ours)  # type: ignore[arg-type]
    want, got = head(reference[0]), head(ours)
    assert got.get("vary") == want.get("vary")
    assert {k: v for k, v in got.items() if k != "vary"} == {
        k: v for k, v in want.items() if k != "vary"
    }


def test_a_stream_of_unknown_length_gets_vary() -> None:
    """Without a Content-Length, the size is unknown when the start message passes: Vary is
    added (Starlette's responder would look at the first chunk; Vary is never wrong)."""
    start = {"type": "http.response.start", "status": 200, "headers": [(b"vary", b"Accept")]}
    compression.GzipMiddleware(None).identity_vary(start)  # type: ignore[arg-type]
    assert start["headers"] == [(b"vary", b"Accept, Accept-Encoding")]


def test_the_apps_identity_answers_carry_vary(client: TestClient) -> None:
    """Through the app: a big /loss answer to a client that takes no gzip varies by both."""
    r = client.post("/loss", json=BIG, headers={"accept-encoding": "identity"})
    assert r.headers["vary"] == "Accept, Accept-Encoding"
    small = client.post("/loss", json={"logits": [1.0, 2.0], "target": 1})
    assert small.headers["vary"] == "Accept"


@pytest.mark.parametrize(
    ("accept", "gzipped"), [("gzip", True), ("gzip;q=0", False), ("", False), ("br, *", True)]
)
def test_the_class_used_as_a_middleware_decides_by_q_values(accept: str, gzipped: bool) -> None:
    """GzipMiddleware on its own (the app's one layer calls its parts): gzip where the
    q-values allow it, else the identity answer with Starlette's Vary."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    text = "cross-entropy " * 200

    async def page(request: Any) -> PlainTextResponse:
        return PlainTextResponse(text)

    app = compression.GzipMiddleware(Starlette(routes=[Route("/", page)]))
    with TestClient(app) as client:
        r = client.get("/", headers={"accept-encoding": accept})
    assert r.text == text
    assert r.headers.get("content-encoding") == ("gzip" if gzipped else None)
    assert r.headers["vary"] == "Accept-Encoding"
