"""POST /train/live: options, the stream, one job at a time, a client that leaves, the cap.

Jobs train on small made-up pictures (the data source is overridden), so that each takes
seconds at most. The rules that only a real connection shows (a client that leaves, events
arriving while the job runs) are tested over a socket, uvicorn serving the app in a thread.
"""

import base64
import io
import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.web import live
from app.web.app import create_app
from app.web.settings import Settings
from bench.server import free_port
from tests.conftest import HANG_GUARD_S, examples
from tests.training.test_live import Data, make_data, tutorial_loop
from tests.training.test_train import TutorialNet

SMALL = make_data(train=320, test=100)
TINY = make_data(train=8, test=4)
LONG = make_data(train=5000, test=100)
LONG_JOB = {"epochs": 20, "batch_size": 1}  # 100,000 steps of LONG: minutes, longer than any guard


def build(
    weights: Path, data: Data = SMALL, seen: list[Any] | None = None, **settings: Any
) -> FastAPI:
    """The app, its jobs training on `data`; `seen` collects what the loader saw of its thread."""
    app = create_app(Settings.model_construct(weights=weights, device="cpu", **settings))

    def load() -> Data:
        if seen is not None:
            seen.append((threading.current_thread(), torch.get_num_threads()))
        return data

    async def source() -> Callable[[], Data]:
        return load

    app.dependency_overrides[live.data_source] = source
    return app


def parse_events(lines: Iterable[str]) -> Iterator[tuple[str, Any]]:
    """Server-Sent Events, as the page will read them: `event:` and `data:` lines, a blank line
    ending each event, `:` comments (pings) skipped."""
    name, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)


def events_of(text: str) -> list[tuple[str, Any]]:
    return list(parse_events(text.splitlines()))


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """For the reference loop run in the test, as the job runs with APP_LIVE_THREADS=1."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# In process: the options and the events -------------------------------------------------------


def test_a_job_streams_what_a_plain_loop_computes(
    random_weights: Path, one_torch_thread: None
) -> None:
    options: dict[str, Any] = {
        "epochs": 2,
        "batch_size": 16,
        "lr": 0.05,
        "momentum": 0.5,
        "seed": 3,
    }
    with TestClient(build(random_weights)) as client:
        r = client.post("/train/live", json=options)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["cache-control"] == "no-store"
    events = events_of(r.text)
    names = [name for name, _ in events]
    assert names[0] == "start" and names[-1] == "done"
    assert names.count("epoch") == 2 and "error" not in names

    net, losses, logits = tutorial_loop(SMALL, **options)
    accuracies = [(x.argmax(1) == SMALL[3]).float().mean().item() for x in logits[1:]]
    progress = [data for name, data in events if name == "progress"]
    assert abs(progress[0]["loss"] - math.log(10)) < 0.15
    assert [loss for p in progress for loss in p["losses"]] == losses
    epochs = [data for name, data in events if name == "epoch"]
    assert [e["test_accuracy"] for e in epochs] == pytest.approx(accuracies, abs=1e-6)
    assert all(len(s["softmax"]) == 10 for e in epochs for s in e["samples"])

    done = events[-1][1]
    assert done["steps"] == len(losses) and done["cut"] is False
    weights = base64.b64decode(done["weights"], validate=True)
    state = torch.load(io.BytesIO(weights), weights_only=True)
    TutorialNet().load_state_dict(state)  # the tutorial's code reads them
    for name, tensor in net.state_dict().items():
        assert torch.equal(state[name], tensor), name


def test_an_empty_body_means_the_defaults(random_weights: Path) -> None:
    with TestClient(build(random_weights, TINY)) as client:
        for body in (b"", b"{}", b"  \n"):
            r = client.post("/train/live", content=body)
            assert r.status_code == 200, r.text
            start = events_of(r.text)[0][1]
            assert {k: start[k] for k in ("epochs", "batch_size", "lr", "momentum", "seed")} == {
                "epochs": 2,
                "batch_size": 32,
                "lr": 0.02,
                "momentum": 0.9,
                "seed": 0,
            }


def test_the_job_runs_in_its_own_thread_with_the_threads_set(random_weights: Path) -> None:
    seen: list[Any] = []
    with TestClient(build(random_weights, TINY, seen, live_threads=2)) as client:
        assert client.post("/train/live", json={"epochs": 1}).status_code == 200
        assert client.post("/train/live", json={"epochs": 1}).status_code == 200
    (first, threads), (second, _) = seen
    assert first.name == "live-training" and threads == 2
    assert first is not second  # a thread per job, not the event loop's, nor the compute lane's
    assert first is not threading.main_thread()


BAD = [
    ({"epochs": 0}, 422, "epochs"),
    ({"epochs": 21}, 422, "epochs"),
    ({"epochs": 2.0}, 422, "epochs"),
    ({"epochs": True}, 422, "epochs"),
    ({"epochs": "2"}, 422, "epochs"),
    ({"batch_size": 0}, 422, "batch_size"),
    ({"batch_size": 513}, 422, "batch_size"),
    ({"lr": 0}, 422, "lr"),
    ({"lr": -0.1}, 422, "lr"),
    ({"lr": None}, 422, "lr"),
    ({"momentum": 1}, 422, "momentum"),
    ({"momentum": -0.5}, 422, "momentum"),
    ({"seed": -1}, 422, "seed"),
    ({"seed": 2**63}, 422, "seed"),
    ({"learning_rate": 0.1}, 422, "learning_rate"),
    ([], 422, "body"),
    ("not json", 400, "not valid JSON"),
    ('{"lr": NaN}', 400, "not valid JSON"),
    ('{"lr": 1e999}', 400, "not valid JSON"),
]


def post_raw(client: TestClient | httpx.Client, body: Any) -> httpx.Response:
    content = body if isinstance(body, str) else json.dumps(body)
    return client.post("/train/live", content=content, headers={"content-type": "application/json"})


@pytest.mark.parametrize(("body", "status", "named"), BAD)
def test_bad_options_get_a_4xx_saying_what(
    random_weights: Path, body: Any, status: int, named: str
) -> None:
    with TestClient(build(random_weights, TINY)) as client:
        r = post_raw(client, body)
    assert r.status_code == status, r.text
    assert named in json.dumps(r.json()["detail"])


def test_a_body_over_the_cap_is_413(random_weights: Path) -> None:
    with TestClient(build(random_weights, TINY)) as client:
        r = post_raw(client, {"seed": 1, "padding": "x" * live.MAX_BODY_BYTES})
    assert r.status_code == 413 and "limit" in r.json()["detail"]


def test_a_diverging_job_sends_null_and_finishes(random_weights: Path) -> None:
    with TestClient(build(random_weights, TINY)) as client:
        r = client.post("/train/live", json={"lr": 1e30, "epochs": 3, "batch_size": 2})
    events = events_of(r.text)
    assert None in [loss for name, data in events if name == "progress" for loss in data["losses"]]
    assert events[-1][0] == "done"


@given(
    st.dictionaries(
        st.sampled_from(["epochs", "batch_size", "lr", "momentum", "seed", "other"]),
        st.one_of(
            st.integers(-(2**64), 2**64),
            st.floats(allow_nan=False, allow_infinity=False),
            st.booleans(),
            st.none(),
            st.text(max_size=5),
            st.lists(st.integers(), max_size=2),
        ),
    )
)
@settings(max_examples=examples(60), suppress_health_check=list(HealthCheck))
def test_any_options_get_a_job_or_a_4xx(fuzz_client: TestClient, body: dict[str, Any]) -> None:
    r = post_raw(fuzz_client, body)
    if r.status_code == 200:
        assert events_of(r.text)[-1][0] == "done"
    else:
        assert r.status_code == 422 and r.json()["detail"], r.text


@pytest.fixture(scope="module")
def fuzz_client(random_weights: Path) -> Iterator[TestClient]:
    with TestClient(build(random_weights, TINY)) as client:
        yield client


def test_the_api_schema_shows_the_stream(random_weights: Path) -> None:
    app = create_app(Settings.model_construct(weights=random_weights))
    operation = app.openapi()["paths"]["/train/live"]
    answers = operation["post"]["responses"]
    assert "text/event-stream" in answers["200"]["content"]
    assert {"400", "413", "422", "429"} <= set(answers)
    body = operation["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"epochs", "batch_size", "lr", "momentum", "seed"}


# Over a socket: one job at a time, a client that leaves, the cap ------------------------------


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """uvicorn serving `app` on a free loopback port, in a thread of this process."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, "the server to start", thread.is_alive)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def wait_for(
    condition: Callable[[], bool],
    what: str,
    still: Callable[[], bool] = lambda: True,
    guard_s: float = HANG_GUARD_S,
) -> None:
    """Poll for a state, failing after a generous guard."""
    deadline = time.monotonic() + guard_s
    while not condition():
        assert still(), f"gave up waiting for {what}"
        assert time.monotonic() < deadline, f"no {what} within {guard_s:g} s"
        time.sleep(0.01)


@contextmanager
def stream(client: httpx.Client, body: dict[str, Any]) -> Iterator[Iterator[tuple[str, Any]]]:
    with client.stream("POST", "/train/live", json=body) as r:
        assert r.status_code == 200
        yield parse_events(r.iter_lines())


def test_one_job_at_a_time_and_a_client_that_leaves_stops_it(random_weights: Path) -> None:
    app = build(random_weights, LONG)
    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        with stream(client, LONG_JOB) as events:
            for name, _ in events:
                if name == "progress":
                    break
            total = 20 * 5000
            job: live.Job = app.state.live_job
            assert job.active

            busy = client.post("/train/live", json={})
            assert busy.status_code == 429
            assert "already running" in busy.json()["detail"]
            assert 0 < int(busy.headers["retry-after"]) <= 60
            # Options are checked first, whether or not a job runs.
            assert post_raw(client, {"epochs": 0}).status_code == 422
            assert post_raw(client, {"x": "y" * live.MAX_BODY_BYTES}).status_code == 413
            # The rest of the server answers meanwhile.
            assert client.get("/health").status_code == 200
            assert client.post("/loss", json={"logits": [1.0, 2.0], "target": 1}).status_code == 200
            assert job.active
        # The client has left: the job stops after the step it is in, and frees the slot.
        wait_for(lambda: not job.active, "stop after the client left")
        job.thread.join(timeout=HANG_GUARD_S)
        assert not job.thread.is_alive()
        assert job.stop.is_set() and 0 < job.step < total

        with stream(client, {"epochs": 1}) as events:
            names = [name for name, _ in events]
        assert names[0] == "start" and names[-1] == "done"
        assert app.state.live_job is not job


def test_events_arrive_as_they_happen_and_the_cap_cuts_the_job(random_weights: Path) -> None:
    """Each event reaches the client while the job still trains (nothing on the way holds the
    stream back, gzip asked for or not), and the cap ends it with a done that says so."""
    app = build(random_weights, LONG, live_cap_s=3.0)
    with serve(app) as url:
        for encoding in ("gzip", "identity"):
            headers = {"accept-encoding": encoding}
            with httpx.Client(base_url=url, timeout=30, headers=headers) as client:
                # Each event as it arrives, and whether the job was still training then.
                received: list[tuple[str, dict[str, Any], bool]] = []
                with stream(client, LONG_JOB) as events:
                    for name, data in events:
                        received.append((name, data, app.state.live_job.active))
            name, done, _ = received[-1]
            assert name == "done" and done["cut"] is True and 0 < done["steps"] < 20 * 5000
            assert received[0][0] == "start" and received[0][2]
            progress = [data for name, data, active in received if name == "progress" and active]
            assert len(progress) >= 3  # received as they happened, while the job trained on
            assert progress[0]["step"] < progress[1]["step"] < progress[2]["step"] < done["steps"]


# The shipped subset ------------------------------------------------------------------------


def test_the_default_job_on_the_shipped_subset(random_weights: Path) -> None:
    """What the learner gets by pressing Start: the loss starts at a guess among ten classes
    and two epochs reach at least 25% on the 1,000 test pictures (10% is chance)."""
    app = create_app(Settings.model_construct(weights=random_weights, device="cpu"))
    with TestClient(app) as client:
        r = client.post("/train/live", json={})
    events = events_of(r.text)
    start = events[0][1]
    assert start["train_images"] >= 5000 and start["test_images"] == 1000
    progress = [data for name, data in events if name == "progress"]
    assert abs(progress[0]["loss"] - math.log(10)) < 0.15
    epochs = [data for name, data in events if name == "epoch"]
    assert len(epochs) == 2 and epochs[-1]["test_accuracy"] >= 0.25
    assert [s["label"] for s in epochs[-1]["samples"]] == [3, 8, 6, 1]  # cat, ship, frog, car
    assert events[-1][0] == "done" and events[-1][1]["cut"] is False
