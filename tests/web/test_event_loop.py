"""No request may hold the event loop for others: what is not bounded by the caps runs off it.

The in-process tests assert where work runs (a spy that asks whether an event loop is running in
its thread), not how long it takes. The last test serves the app for real and sends the worst
bodies the caps let through while another client is served, with generous hang guards; the
figures that matter are measured by `python -m bench.hostile` (bench/README.md).
"""

import asyncio
import io
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.web import service
from app.web.serialize import OrjsonResponse
from app.web.settings import Settings
from bench import hostile
from bench.server import Server
from tests.conftest import build_app, image_bytes


def on_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # a worker thread: no event loop here
        return False
    return True


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(build_app(settings)) as c:
        yield c


def noise_png(side: int) -> bytes:
    pixels = np.random.default_rng(side).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_big_uploads_are_read_off_the_event_loop(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Headers of uploads over 64 KiB in all are read in the compute lane (PNG chunks walked,
    JPEG markers looked for); a few small ones on the loop."""
    where: list[bool] = []
    real = service.open_upload

    def spy(*args: Any, **kwargs: Any) -> Any:
        where.append(on_loop())
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "open_upload", spy)
    big = noise_png(200)
    assert len(big) > 64 * 1024
    for data in (big, image_bytes()):
        assert (
            client.post("/predict", files=[("image", ("a.png", data, "image/png"))]).status_code
            == 200
        )
    assert where == [False, True]


def test_big_answers_are_written_off_the_event_loop(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    where: list[tuple[bool, int]] = []
    real = OrjsonResponse.render

    def spy(self: OrjsonResponse, content: Any) -> bytes:
        body = real(self, content)
        where.append((on_loop(), len(body)))
        return body

    monkeypatch.setattr(OrjsonResponse, "render", spy)
    rows = 2000  # a 60 kB body, a 1 MB answer
    big = {"logits": [[0.123456] * 10] * rows, "target": [1] * rows}
    assert client.post("/loss", json=big).status_code == 200
    assert client.post("/loss", json={"logits": [1.0, 2.0], "target": 0}).status_code == 200
    assert [on for on, _ in where] == [False, True] and where[0][1] > 1_000_000


def test_junk_after_a_jpeg_start_is_refused_from_its_first_bytes(client: TestClient) -> None:
    """8 MB of zeros after a JPEG's first three bytes: Pillow would look for a marker in every
    byte of it (0.5 s here, 3 s for 45 MB); the header must be near the start."""
    junk = hostile.junk_jpeg(8 * 1024 * 1024)
    r = client.post("/predict", files=[("image", ("junk.jpg", junk, "image/jpeg"))])
    assert r.status_code == 422
    assert r.json()["detail"] == "junk.jpg: no image header found at the start of the file"


def test_pictures_with_text_chunks_are_answered_without_their_text(client: TestClient) -> None:
    """64 PNGs of 1x1 pixel, each with 64 MiB of zTXt text in 66 kB: Pillow would inflate and
    keep 4 GiB of text; the text is never read."""
    png = hostile.text_png()
    files = [("image", (f"{i}.png", png, "image/png")) for i in range(64)]
    r = client.post("/predict", files=files)
    assert (
        r.status_code == 200 and [i["original_size"] for i in r.json()["images"]] == [[1, 1]] * 64
    )


# Generous: on the unfixed code /health waited 50 s and the server grew to 4.4 GiB.
HEALTH_GUARD_S = 2.0
PREDICT_GUARD_S = 3.0


def test_others_are_served_while_the_worst_requests_are_handled() -> None:
    """The app served for real: a 45 MiB junk upload, 64 text-chunk PNGs and a 9 MB JSON sent
    at once, while a probe calls /health and a second client sends one JPEG to /predict."""
    with Server("app.main:app", env={"APP_DEVICE": "cpu"}) as server:
        assert server.process is not None
        result = hostile.run(server.url, server.process.pid, rounds=1)
    codes = {name: codes for name, (_, codes) in result.attacks.items()}
    assert codes == {"junk 45 MiB upload": [422], "64 text-chunk PNGs": [200], "9 MB JSON": [200]}
    assert result.health.seconds and not result.health.bad
    assert max(result.health.seconds) < HEALTH_GUARD_S, result.report()
    assert result.predict.seconds and not result.predict.bad
    assert max(result.predict.seconds) < PREDICT_GUARD_S, result.report()
    assert result.rss_peak < hostile.RSS_TARGET_BYTES, result.report()
