"""Smoke tests of the benchmark code: no timing is asserted here, that is what `make bench` does."""

import gzip
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from fastapi.testclient import TestClient

from app.training.live import LiveOptions
from app.web.negotiation import accepts_gzip
from bench import agreement, cpus, engine, live, page, training
from bench.floor import create_floor_app
from bench.load import Load, LoadResult, parse_wrk
from bench.payloads import Picture, cifar_jpegs, loss_body, multipart_body, synthesized_jpegs
from bench.server import Server
from tests.conftest import run_async
from tests.training.test_live import make_data
from tests.web.test_live_api import build

WRK_OUTPUT = """\
Running 3s test @ http://127.0.0.1:8000/loss
  1 threads and 4 connections
  Latency Distribution
     50%  392.00us
     99%   10.03ms
  7242 requests in 3.01s, 1.04MB read
  Non-2xx or 3xx responses: 2
Requests/sec:   2406.00
"""


@pytest.fixture(scope="module")
def floor(random_weights: Path) -> TestClient:
    return TestClient(create_floor_app(random_weights))


def test_floor_loss_is_f_cross_entropy(floor: TestClient) -> None:
    body = loss_body(8)
    r = floor.post("/loss", content=body.data, headers={"content-type": body.content_type})
    assert r.status_code == 200, r.text
    sent = json.loads(body.data)
    expected = F.cross_entropy(
        torch.tensor(sent["logits"], dtype=torch.float64), torch.tensor(sent["target"])
    )
    assert r.json()["loss"] == pytest.approx(float(expected), rel=1e-12)


def test_floor_loss_takes_the_options(floor: TestClient) -> None:
    payload = {
        "logits": [[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]],
        "target": [0, 2],
        "weight": [1.0, 2.0, 0.5],
        "reduction": "none",
        "label_smoothing": 0.1,
    }
    r = floor.post("/loss", json=payload)
    expected = F.cross_entropy(
        torch.tensor(payload["logits"], dtype=torch.float64),
        torch.tensor(payload["target"]),
        weight=torch.tensor(payload["weight"], dtype=torch.float64),
        reduction="none",
        label_smoothing=0.1,
    )
    assert r.json()["loss"] == pytest.approx(expected.tolist(), rel=1e-12)


def test_floor_predict_answers_logits_and_loss(floor: TestClient) -> None:
    pictures = synthesized_jpegs(3)
    body = multipart_body(pictures)
    r = floor.post("/predict", content=body.data, headers={"content-type": body.content_type})
    assert r.status_code == 200, r.text
    assert len(r.json()["logits"]) == 3 and all(len(row) == 10 for row in r.json()["logits"])
    assert r.json()["loss"] > 0


def test_floor_and_app_agree_on_predict(floor: TestClient, client: TestClient) -> None:
    """The same weights and pictures give the same logits, bit for bit (the floor's batch is
    channels first in memory, as the app's and the tutorial's): the floor does the same work."""
    pictures, _ = cifar_jpegs(4)
    body = multipart_body(pictures)
    headers = {"content-type": body.content_type}
    ours = floor.post("/predict", content=body.data, headers=headers).json()
    theirs = client.post("/predict", content=body.data, headers=headers).json()
    # float32 logits: the floor writes them as float32, the app as the float64 of each
    as_float32 = [torch.tensor(x["logits"], dtype=torch.float32) for x in (ours, theirs)]
    assert torch.equal(*as_float32)
    assert theirs["target_source"] == "labels"


def test_floor_and_app_agree_on_step(floor: TestClient, client: TestClient) -> None:
    """The floor runs the same five lines on its own copy of the same weights: the same losses,
    for the benchmark's body (1 step) and for more steps with other options."""
    pictures, _ = cifar_jpegs(4)
    body = multipart_body(pictures)
    headers = {"content-type": body.content_type}
    ours = floor.post("/step", content=body.data, headers=headers).json()["losses"]
    theirs = client.post("/step", content=body.data, headers=headers).json()["losses"]
    assert len(ours) == 2 and ours[1] != ours[0]
    assert ours == pytest.approx(theirs, rel=1e-5)
    files = [("image", (p.filename, p.data, "image/jpeg")) for p in pictures]
    data = {"label": [p.label for p in pictures], "steps": "3", "lr": "0.01", "momentum": "0.5"}
    ours = floor.post("/step", files=files, data=data).json()["losses"]
    theirs = client.post("/step", files=files, data=data).json()["losses"]
    assert len(ours) == 4 and ours == pytest.approx(theirs, rel=1e-5)
    again = floor.post("/step", files=files, data=data).json()["losses"]
    assert again == ours  # each request starts from the same weights


def test_pictures_come_with_labels() -> None:
    pictures, source = cifar_jpegs(12)
    assert len(pictures) == 12 and source
    assert all(isinstance(p, Picture) and p.data[:2] == b"\xff\xd8" for p in pictures)


def test_wrk_output_is_read() -> None:
    result = parse_wrk(WRK_OUTPUT)
    assert result == LoadResult(requests=7242, seconds=3.01, errors=2, p50_ms=0.392)
    assert result.rate == pytest.approx(7242 / 3.01)


def test_python_load_generator_against_a_served_floor(random_weights: Path) -> None:
    """Server and bench.pyload end to end: a real uvicorn process, a short burst of load."""
    body = loss_body(8)
    load = Load(body, connections=2)
    try:
        with Server(
            "bench.floor:create_floor_app",
            factory=True,
            env={"APP_WEIGHTS": str(random_weights)},
        ) as server:
            result = load._python(f"{server.url}/loss", 0.5)
    finally:
        load.close()
    assert result.requests > 0 and result.errors == 0


def test_engine_rows_are_measured_on_one_thread_and_the_count_restored() -> None:
    threads, seen = torch.get_num_threads(), []
    work = engine.cross_entropy_stages

    def counting(*args: Any, **kwargs: Any) -> Any:
        seen.append(torch.get_num_threads())
        return work(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "cross_entropy_stages", counting)
        rows = engine.run((10, 100), budget_s=0.01)
    assert [r.rows for r in rows] == [10, 100]
    assert all(r.engine_s > 0 and r.torch_s > 0 and (r.answer_s or 0) > 0 for r in rows)
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == threads


def test_linearity_is_the_spread_of_seconds_per_row() -> None:
    """max / min of seconds per row over the sizes from `from_rows` up, of either column."""
    rows = [
        engine.EngineRow(10, engine_s=1.0, torch_s=9.0, answer_s=None),  # 0.1 and 0.9 per row
        engine.EngineRow(100, engine_s=2.0, torch_s=20.0, answer_s=None),  # 0.02 and 0.2
        engine.EngineRow(1000, engine_s=40.0, torch_s=100.0, answer_s=None),  # 0.04 and 0.1
        engine.EngineRow(10_000, engine_s=300.0, torch_s=500.0, answer_s=None),  # 0.03 and 0.05
    ]
    assert engine.linearity(rows, from_rows=100) == pytest.approx(2.0)
    assert engine.linearity(rows, from_rows=10) == pytest.approx(5.0)
    assert engine.linearity(rows, from_rows=100, of="torch_s") == pytest.approx(4.0)
    assert engine.linearity(rows[:1], from_rows=10) == 1.0
    assert math.isnan(engine.linearity(rows, from_rows=100_000))


def test_page_parser_finds_assets_and_reads_cache_control() -> None:
    parser = page._Links()
    parser.feed(
        '<link rel="stylesheet" href="/static/a.css?v=1"><link rel="canonical" href="/x">'
        '<script src="/static/b.js"></script><img src="data:image/png;base64,AA">'
        '<img src="/static/c.png">'
    )
    assert parser.urls == [
        "/static/a.css?v=1",
        "/static/b.js",
        "data:image/png;base64,AA",
        "/static/c.png",
    ]

    def fetched(cache_control: str) -> page.Fetched:
        return page.Fetched("/x", 200, 10, 5, "gzip", cache_control, gzip.compress(b"hi"))

    assert fetched("public, max-age=31536000, immutable").cacheable
    assert not fetched("public, max-age=0, must-revalidate").cacheable
    assert not fetched("no-store").cacheable
    assert page._decoded(fetched("")) == b"hi"


def test_time_to_accuracy_is_read_from_the_metrics(tmp_path: Path) -> None:
    metrics = {
        "test_accuracy": 0.75,
        "recipe": "default",
        "epochs": 3,
        "batch_size": 128,
        "data_load_s": 5.0,
        "wall_time_s": 100.0,
        "history": {"test_accuracy": [0.5, 0.73, 0.75], "epoch_time_s": [30.0, 30.0, 30.0]},
    }
    path = tmp_path / "cifar_net.json"
    path.write_text(json.dumps(metrics))
    run = training.shipped(path)
    assert run is not None and run.seconds_to_target == 65.0 and run.accuracy == 0.75
    (tmp_path / "tutorial.json").write_text(json.dumps({**metrics, "recipe": "tutorial"}))
    found = training.tutorial((tmp_path,))
    assert found is not None and found.recipe == "tutorial"


def test_large_answers_are_gzipped_at_level_one_when_accepted(client: TestClient) -> None:
    """The gzip row of the benchmark: big answers compressed by the app, small ones as before."""
    body = loss_body(1024)
    headers = {"content-type": body.content_type}
    plain = client.post("/loss", content=body.data, headers={**headers, "accept-encoding": ""})
    assert plain.status_code == 200 and "content-encoding" not in plain.headers
    packed = client.post("/loss", content=body.data, headers={**headers, "accept-encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.headers["vary"] == "Accept, Accept-Encoding"  # Accept: JSON or .npz
    assert packed.json() == plain.json()  # httpx decodes it
    assert int(packed.headers["content-length"]) < len(plain.content) / 2


@pytest.mark.parametrize(
    ("header", "accepted"),
    [("gzip, deflate, br", True), ("br;q=1.0, gzip;q=0.5", True), ("*", True), ("", False),
     ("gzip;q=0", False), ("identity", False), ("deflate", False)],
)  # fmt: skip
def test_accept_encoding_is_read(header: str, accepted: bool) -> None:
    assert accepts_gzip(header) is accepted


def test_live_bench_parts(random_weights: Path) -> None:
    """bench.live's pieces on made-up pictures: a bare loop, a served job, latency samples."""
    images, labels, _, _ = make_data(train=64, test=8)
    options = LiveOptions(epochs=1, batch_size=16)
    assert live.bare_loop(images, labels, options, torch.device("cpu")) > 0
    with TestClient(build(random_weights, make_data(train=64, test=8))) as client:
        seen = live.served_job(client, {"epochs": 1})
        assert seen["done"]["steps"] == 2 and "progress" in seen
        samples = live.sample(client, 0.05)
    assert set(samples) == {"GET /health", "POST /loss 8x10"} and all(samples.values())
    result = live.LiveResult(
        1,
        "cpu",
        64,
        bare=[100.0],
        served=[90.0],
        accuracy=[0.3],
        seconds=[2.0],
        first_loss=[2.3],
        latency={k: {"idle": v, "during": v} for k, v in samples.items()},
    )
    assert result.ratio == pytest.approx(0.9) and result.passed
    assert "0.90x" in "\n".join(live.lines(result))


def test_insitu_timer_counts_calls_and_keeps_results() -> None:
    """bench.insitu's wrapper: the function's result (or exception) as it was, each call
    counted and timed, coroutines awaited."""
    from bench.insitu import Totals, timed

    totals: Totals = {}
    square = timed(lambda x: x * x, "square", totals)
    assert [square(3), square(4)] == [9, 16] and totals["square"][1] == 2

    async def half(x: float) -> float:
        return x / 2

    assert run_async(timed(half, "half", totals)(3.0)) == 1.5 and totals["half"][1] == 1
    failing = timed(lambda: 1 / 0, "fails", totals)
    with pytest.raises(ZeroDivisionError):
        failing()
    assert totals["fails"][1] == 1 and all(t[0] >= 0 for t in totals.values())


def test_agreement_counts_differences_in_ulps() -> None:
    """bench.agreement's counts, against steps of math.nextafter: equal, 1 ulp, 3 ulps."""
    base = torch.tensor([2.5, -1e-9], dtype=torch.float64)
    one = torch.tensor([math.nextafter(2.5, 3.0), -1e-9], dtype=torch.float64)
    three = torch.tensor([2.5, -1e-9], dtype=torch.float64)
    for _ in range(3):
        three[1] = math.nextafter(three[1].item(), 0.0)
    assert agreement.ulps_apart(one, base) == 1.0
    assert agreement.ulps_apart(three, base) == 3.0
    result = agreement.Agreement()
    for ours in (base, one, three):
        agreement.tally(result, "x", ours, base)
    assert (result.cases["x"], result.differ["x"], result.beyond_2_ulps["x"]) == (3, 2, 1)
    nan = torch.tensor([math.nan, 1.0], dtype=torch.float64)  # NaN counts as equal to NaN
    assert agreement.same(nan, nan.clone()) and not agreement.same(nan, nan.nan_to_num(0.0))
    scalar = torch.tensor(math.nextafter(1.0, 2.0), dtype=torch.float64)
    assert agreement.ulps_apart(scalar, torch.tensor(1.0, dtype=torch.float64)) == 1.0


def test_agreement_compares_every_size_reduction_and_path() -> None:
    result = agreement.measure(cases=1)
    sizes = len(agreement.ROWS) * len(agreement.CLASSES)
    plain = {"loss, mean", "loss, sum", "loss, none", "log_probs", "softmax", "log_sum_exp"}
    assert plain <= set(result.cases)
    assert all(result.cases[name] == sizes for name in plain)
    others = set(result.cases) - plain
    assert len(others) == 3 * 7 * len(agreement.SHAPES)  # reductions x paths x shapes
    assert all(result.cases[name] == len(agreement.ROWS) for name in others)
    # the engine is PyTorch's bit for bit on every CPU (tests/engine check it path by path)
    assert sum(result.differ.values()) == 0, dict(result.differ)


def test_servers_and_load_get_cpus_of_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """bench.cpus: the last CPU for every server, the others for the load; a child started with
    pinned_to runs there; BENCH_NO_PIN (python -m bench --no-pin) and a single CPU split nothing."""
    monkeypatch.setattr(cpus.os, "sched_getaffinity", lambda pid: {0, 1, 2})
    assert cpus.split() == ({2}, {0, 1})
    assert (cpus.server_cpus(), cpus.load_cpus()) == ({2}, {0, 1})
    monkeypatch.setenv(cpus.NO_PIN, "1")
    assert cpus.split() is None and cpus.server_cpus() is None and cpus.load_cpus() is None
    monkeypatch.delenv(cpus.NO_PIN)
    monkeypatch.setattr(cpus.os, "sched_getaffinity", lambda pid: {5})
    assert cpus.split() is None
    assert cpus.pinned_to(None) is None
    monkeypatch.undo()
    first = min(os.sched_getaffinity(0))
    code = "import os; print(sorted(os.sched_getaffinity(0)))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=cpus.pinned_to({first}),
    ).stdout
    assert out.strip() == f"[{first}]"
