"""The gzip middleware: compresses what is asked for and worth it, nothing else, never twice."""

import asyncio
import gzip
import zlib
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.web.middleware import compression

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
