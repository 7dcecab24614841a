"""The gzip middleware: compresses what is asked for and worth it, nothing else, never twice."""

import gzip

import pytest
from fastapi.testclient import TestClient

BIG = {"logits": [[0.5] * 10] * 200, "target": [3] * 200}


def test_large_json_is_gzipped_when_accepted(client: TestClient) -> None:
    r = client.post("/loss", json=BIG, headers={"accept-encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in r.headers["vary"].lower()
    assert int(r.headers["content-length"]) < len(r.content)  # httpx decoded it
    assert r.json()["predicted"] == [0] * 200


@pytest.mark.parametrize("accept", ["identity", "gzip;q=0", "br", ""])
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
