"""Load and soak: a mixed load on one uvicorn worker, its memory sampled every second.

    python -m bench.soak [--seconds 75] [--rounds 3] [--concurrency 8] [--warmup 10]

Starts the app (the shipped weights if app/weights/cifar_net.pth exists, else random weights in
a temporary folder) with uvicorn, one worker, on a free loopback port. A separate process sends
a fixed mix at a fixed concurrency: /loss (the tutorial's 10 logits, and 1024x10), /predict
(1 and 16 CIFAR-sized JPEGs with labels), the pages / and /sandbox, and a share of bad input
that must get its 4xx. After a warm-up, the measured time is cut into rounds; the server's RSS
is read from /proc every second. Errors are 5xx answers, connection errors and any status other
than the one expected. The report (requests, errors, p50/p99 per kind, RSS at start, middle and
end and at the end of each round) is printed and written to bench/results/soak.md.
"""

import argparse
import asyncio
import io
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.server import Server

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "soak.md"
SHIPPED_WEIGHTS = ROOT / "app" / "weights" / "cifar_net.pth"
GALLERY = ROOT / "static" / "gallery"
JSON = {"content-type": "application/json"}
TUTORIAL_LOGITS = [-1.2, -2.1, 0.6, 2.3, -0.5, 1.4, 0.3, -0.8, -0.3, -1.6]
FLAT_TOLERANCE = 0.10  # RSS at the end within 10% of RSS after warm-up
ROUND_TOLERANCE = 0.05  # RSS at the end of each later round within 5% of the first round's


# What is sent --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    content: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    expect: int = 200


@dataclass(frozen=True)
class Kind:
    name: str
    weight: int  # relative share of the requests
    requests: tuple[Request, ...]  # sent in turn


def cifar_jpegs(count: int) -> list[tuple[str, bytes, str]]:
    """(filename, JPEG bytes, label): the gallery's pictures, else synthetic 32x32 ones."""
    pictures = sorted(GALLERY.glob("*.jpg"))
    if pictures:
        return [
            (p.name, p.read_bytes(), p.name.split("-")[0])
            for p in (pictures[i % len(pictures)] for i in range(count))
        ]
    from PIL import Image

    rng = random.Random(0)
    out = []
    for i in range(count):
        buffer = io.BytesIO()
        pixels = bytes(rng.randrange(256) for _ in range(32 * 32 * 3))
        Image.frombytes("RGB", (32, 32), pixels).save(buffer, format="JPEG", quality=90)
        out.append((f"synthetic-{i}.jpg", buffer.getvalue(), str(i % 10)))
    return out


def multipart(parts: list[tuple[str, str | None, bytes, str | None]]) -> tuple[bytes, str]:
    """(name, filename, data, content type) parts -> body and its Content-Type."""
    boundary = "soak-boundary-7d1f0c"
    body = bytearray()
    for name, filename, data, content_type in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if content_type:
            body += f"Content-Type: {content_type}\r\n".encode()
        body += b"\r\n" + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return bytes(body), f"multipart/form-data; boundary={boundary}"


def predict_request(count: int) -> Request:
    parts: list[tuple[str, str | None, bytes, str | None]] = []
    for filename, data, label in cifar_jpegs(count):
        parts.append(("image", filename, data, "image/jpeg"))
        parts.append(("label", None, label.encode(), None))
    body, content_type = multipart(parts)
    return Request("POST", "/predict", body, {"content-type": content_type})


def json_request(payload: Any, expect: int = 200) -> Request:
    return Request(
        "POST", "/loss", orjson.dumps(payload), {"content-type": "application/json"}, expect
    )


def mix() -> list[Kind]:
    rng = random.Random(1)
    big = [[rng.gauss(0, 3) for _ in range(10)] for _ in range(1024)]
    jpeg = cifar_jpegs(1)[0][1]
    no_boundary = multipart([("image", "a.png", b"x", "image/png")])[0]
    not_an_image, not_an_image_type = multipart([("image", "a.png", b"hello" * 100, "image/png")])
    html = {"accept": "text/html"}
    return [
        Kind("loss 10", 30, (json_request({"logits": TUTORIAL_LOGITS, "target": 3}),)),
        Kind(
            "loss 1024x10",
            10,
            (json_request({"logits": big, "target": [i % 10 for i in range(1024)]}),),
        ),
        Kind("predict 1", 15, (predict_request(1),)),
        Kind("predict 16", 5, (predict_request(16),)),
        Kind("page /", 5, (Request("GET", "/", headers=html),)),
        Kind("page /sandbox", 5, (Request("GET", "/sandbox", headers=html),)),
        Kind(
            "bad input (4xx)",
            10,
            (
                Request("POST", "/loss", b'{"logits": [1, 2', JSON, 400),
                json_request({"logits": [[1.0, 2.0], [1.0]], "target": [0, 1]}, 422),
                json_request({"logits": [1.0, 2.0], "target": 1, "weight": "x"}, 422),
                Request("POST", "/loss", b"[" * 100_000, JSON, 400),
                Request("POST", "/predict", not_an_image, {"content-type": not_an_image_type}, 422),
                Request(
                    "POST", "/predict", no_boundary, {"content-type": "multipart/form-data"}, 400
                ),
                Request("POST", "/predict", jpeg, {"content-type": "image/jpeg"}, 422),
                Request("POST", "/loss", b" " * (10 * 1024 * 1024 + 1), JSON, 413),
            ),
        ),
    ]


# The load generator, in its own process ------------------------------------------------------


@dataclass
class Outcome:
    kind: str
    round: int  # 0 for the warm-up
    status: int  # 0 for a connection error
    expected: int
    seconds: float


async def _worker(
    client: httpx.AsyncClient,
    kinds: list[Kind],
    schedule: list[float],
    outcomes: list[Outcome],
    seed: int,
) -> None:
    rng = random.Random(seed)
    weights = [k.weight for k in kinds]
    turns = dict.fromkeys((k.name for k in kinds), 0)
    while (now := time.monotonic()) < schedule[-1]:
        current = next(i for i, end in enumerate(schedule) if now < end)
        kind = rng.choices(kinds, weights)[0]
        request = kind.requests[turns[kind.name] % len(kind.requests)]
        turns[kind.name] += 1
        start = time.perf_counter()
        try:
            response = await client.request(
                request.method, request.path, content=request.content, headers=request.headers
            )
            status = response.status_code
        except httpx.HTTPError:
            status = 0
        outcomes.append(
            Outcome(kind.name, current, status, request.expect, time.perf_counter() - start)
        )


async def _generate(url: str, concurrency: int, schedule: list[float]) -> list[Outcome]:
    kinds = mix()
    outcomes: list[Outcome] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(60.0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as client:
        await asyncio.gather(
            *(_worker(client, kinds, schedule, outcomes, seed) for seed in range(concurrency))
        )
    return outcomes


def generate(url: str, concurrency: int, schedule: list[float], results: Any) -> None:
    """Process entry point: run the load until the schedule's last time, send back outcomes."""
    outcomes = asyncio.run(_generate(url, concurrency, schedule))
    results.put([(o.kind, o.round, o.status, o.expected, o.seconds) for o in outcomes])


# The server and its memory -------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def random_weights(folder: Path) -> Path:
    import torch

    from app.model import Net

    torch.manual_seed(0)
    path = folder / "cifar_net.pth"
    torch.save(Net().state_dict(), path)
    return path


class Sampler(threading.Thread):
    """Reads the server's RSS every second: (monotonic time, bytes)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[tuple[float, int]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                self.samples.append((time.monotonic(), rss_bytes(self.pid)))
            except (OSError, RuntimeError):
                return
            self.done.wait(1.0)

    def at(self, moment: float) -> int:
        """The last sample taken at or before the moment."""
        before = [rss for t, rss in self.samples if t <= moment]
        return before[-1] if before else self.samples[0][1]


# The report ----------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


# Other work that would share the CPUs: the trainer and the benchmarks (not this soak).
CPU_HUNGRY = r"app\.train|python -m bench( |$)"


def other_load() -> list[str]:
    """The command lines of other CPU-heavy work running now."""
    found = subprocess.run(["pgrep", "-af", CPU_HUNGRY], capture_output=True, text=True)
    mine = str(os.getpid())
    return [line for line in found.stdout.splitlines() if line.split(" ", 1)[0] != mine]


def report(
    args: argparse.Namespace,
    outcomes: list[tuple[str, int, int, int, float]],
    sampler: Sampler,
    schedule: list[float],
    weights: Path,
    busy: list[str],
    load: float,
) -> tuple[str, bool]:
    measured = [o for o in outcomes if o[1] > 0]
    kinds = list(dict.fromkeys(o[0] for o in outcomes))
    lines = [
        "# Soak",
        "",
        f"`python -m bench.soak --seconds {args.seconds:g} --rounds {args.rounds} "
        f"--concurrency {args.concurrency} --warmup {args.warmup:g}`: one uvicorn worker, "
        f"{'shipped' if weights == SHIPPED_WEIGHTS else 'random'} weights, loopback, "
        f"{os.cpu_count()} CPUs; {args.warmup:g} s warm-up, then {args.rounds} rounds of "
        f"{args.seconds / args.rounds:g} s.",
    ]
    lines += ["", f"Load average before the run: {load:.2f}."]
    if busy:
        lines.append("Other work was running on the same CPUs (latencies are inflated):")
        lines += [f"- `{command[:120]}`" for command in busy]
    lines += [
        "",
        "| kind | requests | req/s | errors | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    total_errors = 0
    for kind in kinds:
        rows = [o for o in measured if o[0] == kind]
        errors = sum(1 for o in rows if o[2] != o[3])
        total_errors += errors
        ms = [o[4] * 1000 for o in rows]
        lines.append(
            f"| {kind} | {len(rows)} | {len(rows) / args.seconds:.1f} | {errors} | "
            f"{percentile(ms, 0.5):.1f} | {percentile(ms, 0.99):.1f} |"
        )
    all_ms = [o[4] * 1000 for o in measured]
    lines.append(
        f"| **all** | {len(measured)} | {len(measured) / args.seconds:.1f} | {total_errors} | "
        f"{percentile(all_ms, 0.5):.1f} | {percentile(all_ms, 0.99):.1f} |"
    )
    kinds_of_error: dict[str, int] = {}
    for o in measured:
        if o[2] != o[3]:
            key = f"{o[0]}: got {o[2] or 'a connection error'}, expected {o[3]}"
            kinds_of_error[key] = kinds_of_error.get(key, 0) + 1
    if kinds_of_error:
        lines += ["", "Errors:", *(f"- {k} ({n}x)" for k, n in kinds_of_error.items())]

    start, end = schedule[0], schedule[-1]
    rss_start, rss_middle = sampler.at(start), sampler.at((start + end) / 2)
    rss_end = sampler.at(end)
    rounds = [sampler.at(t) for t in schedule[1:]]
    peak = max((rss for t, rss in sampler.samples if start <= t <= end), default=rss_end)
    flat = abs(rss_end - rss_start) <= FLAT_TOLERANCE * rss_start
    steady = all(abs(r - rounds[0]) <= ROUND_TOLERANCE * rounds[0] for r in rounds[1:])
    ok = total_errors == 0 and flat and steady
    lines += [
        "",
        "| RSS | after warm-up | middle | end | peak |",
        "|---|---:|---:|---:|---:|",
        f"| server | {mib(rss_start)} | {mib(rss_middle)} | {mib(rss_end)} | {mib(peak)} |",
        "",
        "RSS at the end of each round: "
        + ", ".join(f"{i + 1}: {mib(r)}" for i, r in enumerate(rounds))
        + ".",
        "",
        f"- errors: {total_errors} ({'PASS' if total_errors == 0 else 'FAIL'})",
        f"- flat after warm-up, end within {FLAT_TOLERANCE:.0%} of start: "
        f"{(rss_end - rss_start) / rss_start:+.1%} ({'PASS' if flat else 'FAIL'})",
        f"- no growth over rounds, each within {ROUND_TOLERANCE:.0%} of round 1: "
        + ", ".join(f"{(r - rounds[0]) / rounds[0]:+.1%}" for r in rounds[1:])
        + f" ({'PASS' if steady else 'FAIL'})",
    ]
    return "\n".join(lines) + "\n", ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=75.0, help="measured time (after warm-up)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds the measured time is cut into"
    )
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    busy = other_load()
    load = os.getloadavg()[0]
    if busy:
        print("note: other work is running on these CPUs; latencies will be inflated:")
        print("\n".join(busy))

    with tempfile.TemporaryDirectory(prefix="soak-") as folder:
        weights = SHIPPED_WEIGHTS if SHIPPED_WEIGHTS.is_file() else random_weights(Path(folder))
        env = {"APP_WEIGHTS": str(weights), "APP_DEVICE": "cpu"}
        with Server("app.main:app", env=env) as server:
            assert server.process is not None
            sampler = Sampler(server.process.pid)
            try:
                sampler.start()
                begin = time.monotonic() + 1.0  # the generator's start-up happens before it
                round_s = args.seconds / args.rounds
                schedule = [begin + args.warmup + i * round_s for i in range(args.rounds + 1)]
                # schedule[0] ends the warm-up; schedule[i] ends round i.
                context = multiprocessing.get_context("spawn")
                results = context.Queue()
                generator = context.Process(
                    target=generate, args=(server.url, args.concurrency, schedule, results)
                )
                generator.start()
                outcomes = results.get(timeout=args.warmup + args.seconds + 180)
                generator.join(timeout=30)
                time.sleep(1.1)  # one more sample after the load
                alive = server.process.poll() is None
                alive = alive and httpx.get(f"{server.url}/health").status_code == 200
            finally:
                sampler.done.set()
                sampler.join(timeout=5)
            server.stop()
            server_log = server.log.read_text(errors="replace")
        text, ok = report(args, outcomes, sampler, schedule, weights, busy, load)
        if not alive:
            text += "- the server did not answer /health after the load (FAIL)\n"
            ok = False
    print(text)
    tracebacks = server_log.count("Traceback")
    if tracebacks:
        print(f"the server logged {tracebacks} tracebacks; the last lines:\n{server_log[-3000:]}")
        ok = False
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"written to {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
