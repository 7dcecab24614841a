"""Live training (POST /train/live): a served job's speed against a bare PyTorch loop, and how
long /health and /loss take to answer while a job trains.

Speed: the app serves jobs with the default options (2 epochs of the shipped subset, batch 32,
SGD lr 0.02 momentum 0.9); each job's images per second is the pictures it trained on over the
`seconds` its done event reports (training, the test after each epoch, the events). The bare
loop is the tutorial's loop on the same tensors in this process: the same Net, pictures, batch
size, normalisation, optimizer, torch threads (APP_LIVE_THREADS) and device, timed over its
epochs alone. They alternate, the ratio is job / loop per pair, and the table gives the median.

Latency: GET /health and POST /loss (8 x 10 logits) one after another from one client for a few
seconds with no job, then as long again while a job trains; the median and 99th percentile of
each, in milliseconds.

    python -m bench.live [--pairs 5] [--seconds 4]
"""

import argparse
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import torch
import torch.nn.functional as F

from app.model import Net, normalize
from app.training.live import LiveOptions
from app.training.subset import load_subset
from app.web.settings import Settings
from bench.payloads import loss_body
from bench.server import Server

TARGET = 0.85
LONG = {"epochs": 20}  # a job that outlasts the latency samples; it is stopped by leaving


@dataclass
class LiveResult:
    threads: int
    device: str
    train_images: int
    bare: list[float] = field(default_factory=list)  # images/s
    served: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)  # of each served job
    seconds: list[float] = field(default_factory=list)
    first_loss: list[float] = field(default_factory=list)
    latency: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # ms

    @property
    def ratios(self) -> list[float]:
        return [s / b for s, b in zip(self.served, self.bare, strict=True)]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios) if self.ratios else float("nan")

    @property
    def passed(self) -> bool:
        return self.ratio >= TARGET


def bare_loop(
    images: torch.Tensor, labels: torch.Tensor, options: LiveOptions, device: torch.device
) -> float:
    """Images per second of the tutorial's loop on tensors: no events, no tests, no checks."""
    torch.manual_seed(options.seed)
    net = Net().to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=options.lr, momentum=options.momentum)
    x, y = images.to(device), labels.to(device)
    order_generator = torch.Generator().manual_seed(options.seed)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(options.epochs):
        order = torch.randperm(len(y), generator=order_generator).to(device)
        for first in range(0, len(y), options.batch_size):
            batch = order[first : first + options.batch_size]
            loss = F.cross_entropy(net(normalize(x[batch])), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    synchronize(device)
    return options.epochs * len(y) / (time.perf_counter() - start)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def events(response: httpx.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    """Server-Sent Events: `event:` and `data:` lines, a blank line after each."""
    name, data = "message", ""
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data = line[5:].strip()
        elif not line and data:
            yield name, orjson.loads(data)
            name, data = "message", ""


def served_job(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    """Run a job to its end; its start, first progress and done events."""
    seen: dict[str, Any] = {}
    with client.stream("POST", "/train/live", json=body) as response:
        if response.status_code != 200:
            raise RuntimeError(f"POST /train/live answered {response.status_code}")
        for name, data in events(response):
            if name == "error":
                raise RuntimeError(f"the job failed: {data}")
            seen.setdefault(name, data)
    if "done" not in seen:
        raise RuntimeError("the stream ended without a done event")
    return seen


@contextmanager
def job_running(client: httpx.Client) -> Iterator[None]:
    """A long job training in the server until the block ends (the stream is then closed)."""
    started, leave = threading.Event(), threading.Event()

    def follow() -> None:
        with client.stream("POST", "/train/live", json=LONG) as response:
            for name, _ in events(response):
                if name == "progress":
                    started.set()
                if leave.is_set():
                    return

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    if not started.wait(timeout=60):
        raise RuntimeError("the long job sent no progress within 60 s")
    try:
        yield
    finally:
        leave.set()
        thread.join(timeout=30)


def sample(client: httpx.Client, seconds: float) -> dict[str, list[float]]:
    """Latencies (ms) of GET /health and POST /loss, sent in turn for `seconds`."""
    loss = loss_body(8)
    requests = {
        "GET /health": lambda: client.get("/health"),
        "POST /loss 8x10": lambda: client.post(
            "/loss", content=loss.data, headers={"content-type": loss.content_type}
        ),
    }
    out: dict[str, list[float]] = {what: [] for what in requests}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for what, send in requests.items():
            start = time.perf_counter()
            response = send()
            out[what].append((time.perf_counter() - start) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"{what} answered {response.status_code}")
    return out


def measure(
    url: str, pairs: int, seconds: float, app_env: dict[str, str] | None = None
) -> LiveResult:
    """Both measurements against the app at `url`, whose environment adds `app_env` to ours."""
    data = load_subset("train")  # what the served jobs train on
    live_threads = (app_env or {}).get("APP_LIVE_THREADS") or Settings().live_threads
    options = LiveOptions()
    with httpx.Client(base_url=url, timeout=120) as client:
        device = torch.device(client.get("/health").json()["device"])
        result = LiveResult(int(live_threads), str(device), len(data[1]))
        served_job(client, {"epochs": 1})  # the first job of a process imports torch._dynamo
        threads = torch.get_num_threads()
        torch.set_num_threads(result.threads)
        try:
            bare_loop(*data, LiveOptions(epochs=1), device)  # and so does this one
            for i in range(pairs):
                for kind in ("bare", "served") if i % 2 == 0 else ("served", "bare"):
                    if kind == "bare":
                        result.bare.append(bare_loop(*data, options, device))
                        continue
                    seen = served_job(client, {})
                    done = seen["done"]
                    result.served.append(options.epochs * len(data[1]) / done["seconds"])
                    result.accuracy.append(done["test_accuracy"])
                    result.seconds.append(done["seconds"])
                    result.first_loss.append(seen["progress"]["loss"])
        finally:
            torch.set_num_threads(threads)
        idle = sample(client, seconds)
        with job_running(client):
            during = sample(client, seconds)
        result.latency = {what: {"idle": idle[what], "during": during[what]} for what in idle}
    return result


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def lines(result: LiveResult) -> list[str]:
    ratios = ", ".join(f"{r:.2f}" for r in result.ratios)
    out = [
        f"{result.train_images:,} training pictures, {result.threads} torch thread(s), "
        f"device {result.device}; default options (2 epochs, batch 32, lr 0.02, momentum 0.9).",
        "",
        "| what | bare loop images/s | live job images/s | ratio (median of pairs) | target "
        "| result |",
        "|---|---:|---:|---:|---:|---|",
        f"| live job against a bare PyTorch loop | {statistics.median(result.bare):,.0f} | "
        f"{statistics.median(result.served):,.0f} | {result.ratio:.2f}x (pairs: {ratios}) | "
        f">= {TARGET:.2f}x | {'pass' if result.passed else 'FAIL'} |",
        "",
        f"Each served job: {statistics.median(result.seconds):.2f} s (median; "
        f"{min(result.seconds):.2f} to {max(result.seconds):.2f}), test accuracy "
        f"{min(result.accuracy):.1%} to {max(result.accuracy):.1%}, first batch loss "
        f"{statistics.median(result.first_loss):.4f} (ln 10 = 2.3026).",
        "",
        "| request | idle p50 ms | idle p99 ms | during a job p50 ms | during a job p99 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for what, runs in result.latency.items():
        idle, during = runs["idle"], runs["during"]
        out.append(
            f"| {what} | {statistics.median(idle):.2f} | {_percentile(idle, 0.99):.2f} | "
            f"{statistics.median(during):.2f} | {_percentile(during, 0.99):.2f} |"
        )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.live", description=__doc__)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0, help="of latency samples, each")
    args = parser.parse_args(argv)
    with Server("app.main:app") as app:
        print("\n".join(lines(measure(app.url, args.pairs, args.seconds))))


if __name__ == "__main__":
    main()
