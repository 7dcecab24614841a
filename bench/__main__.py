"""`python -m bench`: every benchmark, one table, written to bench/results/latest.md.

Throughput rows serve the project's app (app.main:app) and the floor (bench.floor) side by side,
one uvicorn worker each with the same settings, and fire the same body at each from a second
process (wrk, or bench.pyload without it) in alternating runs; the ratio is app / floor, per pair,
and the table shows the median of the pairs.
"""

import argparse
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch

from app.model import Net
from app.web.negotiation import NPZ
from bench import engine, explainer, live, page, training
from bench.cpus import NO_PIN, load_cpus, split
from bench.load import Load, LoadResult, generator
from bench.payloads import Body, cifar_jpegs, loss_body, multipart_body
from bench.server import ROOT, Server, loop_and_http

RESULTS = ROOT / "bench" / "results" / "latest.md"
SHIPPED_WEIGHTS = ROOT / "app" / "weights" / "cifar_net.pth"
PAGE_LIMIT_BYTES = 1_500_000
ENGINE_LIMIT = 3.0
TRAINING_LIMIT_S = 600.0


@dataclass
class Case:
    what: str
    path: str
    body: Body
    target: float | None  # the lowest app/floor ratio that passes; None: measured, no target
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Measured:
    case: Case
    floor: list[LoadResult] = field(default_factory=list)
    app: list[LoadResult] = field(default_factory=list)

    @property
    def ratios(self) -> list[float]:
        return [a.rate / f.rate for a, f in zip(self.app, self.floor, strict=True) if f.rate]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios) if self.ratios else float("nan")

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.floor + self.app)

    @property
    def passed(self) -> bool | None:
        if self.case.target is None:
            return None
        return self.errors == 0 and self.ratio >= self.case.target


@dataclass
class Options:
    pairs: int
    seconds: float
    warmup: float
    connections: int
    engine_sizes: tuple[int, ...]
    engine_budget_s: float
    out: Path
    app_env: dict[str, str] = field(default_factory=dict)
    only: str | None = None  # run only the throughput rows whose name contains this
    live_pairs: int = 5  # live job and bare loop, alternating
    edits: int = 20  # bench.explainer's edits at each scroll position


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch threads": str(torch.get_num_threads()),
    }


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def cases() -> tuple[list[Case], str]:
    """The rows of issue #17's table that are throughput against the floor, with its targets.
    The floor answers its own lean answer ({"loss": x}, or the logits) to every body and
    Accept header: the app's every-stage answers are set against it as they are."""
    pictures, source = cifar_jpegs(32)
    gzip = {"Accept-Encoding": "gzip"}
    npz = {"Accept": NPZ}
    return [
        Case("POST /loss 8x10, all stages", "/loss", loss_body(8), 0.35),
        Case('POST /loss 8x10, fields=["loss"]', "/loss", loss_body(8, fields=["loss"]), 0.5),
        Case("POST /loss 4096x10, all stages, JSON", "/loss", loss_body(4096), None),
        Case("POST /loss 4096x10, all stages, .npz", "/loss", loss_body(4096), 0.6, npz),
        Case(
            'POST /loss 4096x10, fields=["loss"]',
            "/loss",
            loss_body(4096, fields=["loss"]),
            None,
        ),
        Case(
            "POST /loss 4096x10, all stages, Accept-Encoding: gzip",
            "/loss",
            loss_body(4096),
            None,
            gzip,
        ),
        Case("POST /predict 1 JPEG + label", "/predict", multipart_body(pictures[:1]), 0.75),
        Case("POST /predict 32 JPEGs + labels", "/predict", multipart_body(pictures), 0.80),
        Case("POST /step 4 JPEGs + labels, 1 step", "/step", multipart_body(pictures[:4]), 0.60),
    ], source


def answer(r: httpx.Response) -> dict[str, Any]:
    """A JSON answer, or an .npz one as {name: array}."""
    if r.headers.get("content-type") == NPZ:
        with np.load(io.BytesIO(r.content), allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    body: dict[str, Any] = r.json()
    return body


def check_answers(case: Case, floor_url: str, app_url: str) -> None:
    """Both servers answer this body with 200 and agree on the loss (a failed run is no bench)."""
    headers = {"content-type": case.body.content_type, **case.headers}
    answers = []
    for url in (floor_url, app_url):
        r = httpx.post(url + case.path, content=case.body.data, headers=headers, timeout=60)
        if r.status_code != 200:
            raise RuntimeError(f"{case.what}: {url} answered {r.status_code}: {r.text[:500]}")
        answers.append(answer(r))
    if NPZ in case.headers.values() and not isinstance(answers[1].get("grad"), np.ndarray):
        raise RuntimeError(f"{case.what}: the app did not answer .npz")
    floor, app = answers
    for key in ("loss", "losses"):  # /step answers the loss before and after each step
        if key in floor and key in app:
            want, got = np.atleast_1d(floor[key]), np.atleast_1d(app[key])
            if want.shape != got.shape or not np.allclose(got, want, rtol=1e-5, atol=1e-5):
                raise RuntimeError(f"{case.what}: floor {key} {floor[key]} != app {app[key]}")


def measure(case: Case, floor_url: str, app_url: str, options: Options) -> Measured:
    check_answers(case, floor_url, app_url)
    load = Load(case.body, options.connections, case.headers)
    result = Measured(case)
    try:
        for url in (floor_url, app_url):
            load.run(url + case.path, options.warmup)
        for i in range(options.pairs):
            order = [(floor_url, result.floor), (app_url, result.app)]
            for url, into in order if i % 2 == 0 else reversed(order):
                into.append(load.run(url + case.path, options.seconds))
    finally:
        load.close()
    return result


def _fmt_rate(results: list[LoadResult]) -> str:
    return f"{statistics.median(r.rate for r in results):,.1f}" if results else "-"


def _verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("pass" if ok else "FAIL")


def http_table(rows: list[Measured]) -> list[str]:
    lines = [
        "| what | floor req/s | app req/s | ratio (median of pairs) | spread | target | result |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for m in rows:
        target = f">= {m.case.target:.2f}x" if m.case.target is not None else "(extra)"
        verdict = _verdict(m.passed)
        if m.errors:
            verdict += f" ({m.errors} errors)"
        spread = f"{min(m.ratios):.2f}-{max(m.ratios):.2f}" if m.ratios else "-"
        lines.append(
            f"| {m.case.what} | {_fmt_rate(m.floor)} | {_fmt_rate(m.app)} | {m.ratio:.2f}x "
            f"(pairs: {', '.join(f'{r:.2f}' for r in m.ratios)}) | {spread} | {target} "
            f"| {verdict} |"
        )
    gpu = "not measured: no GPU" if not torch.cuda.is_available() else "not measured: CPU only"
    lines.append(f"| POST /predict 64 JPEGs, GPU vs CPU | - | - | - | - | - | {gpu} |")
    return lines


def engine_table(rows: list[engine.EngineRow]) -> tuple[list[str], bool | None]:
    lines = [
        "| N (x10 classes) | engine ms | torch fwd+bwd ms | ratio | engine ns/row "
        "| torch ns/row | stages_to_json + JSON bytes ms |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.rows:,} | {r.engine_s * 1e3:.3f} | {r.torch_s * 1e3:.3f} | {r.ratio:.2f}x | "
            f"{r.engine_s / r.rows * 1e9:,.0f} | {r.torch_s / r.rows * 1e9:,.0f} | "
            f"{'over the API cap' if r.answer_s is None else f'{r.answer_s * 1e3:.3f}'} |"
        )
    big = [r for r in rows if r.rows >= 10_000]
    # Linear: time per row grows no more across N than PyTorch's own does, give or take 2x.
    linear = engine.linearity(rows) <= 2 * engine.linearity(rows, of="torch_s")
    ok = all(r.ratio <= ENGINE_LIMIT for r in big) and linear if big else None
    return lines, ok


def page_lines(app_url: str) -> tuple[list[str], bool | None]:
    load = page.first_load(app_url)
    if load.page.status != 200:
        return [f"not measured: GET / answered {load.page.status}"], None
    lines = [
        "| resource | status | wire bytes | encoding | Cache-Control |",
        "|---|---:|---:|---|---|",
    ]
    for f in [load.page, *load.assets]:
        lines.append(
            f"| `{f.path}` | {f.status} | {f.wire_bytes:,} | {f.content_encoding or 'identity'} | "
            f"{f.cache_control or '(none)'} |"
        )
    lines.append(f"| **total** | | **{load.wire_bytes:,}** | | |")
    ok = load.wire_bytes <= PAGE_LIMIT_BYTES and not load.uncacheable and not load.failed
    if load.uncacheable:
        lines.append(f"\nNot cacheable: {', '.join(load.uncacheable)}")
    if load.failed:
        lines.append(f"\nFailed: {', '.join(load.failed)}")
    return lines, ok


def training_lines() -> tuple[list[str], bool | None]:
    shipped = training.shipped()
    tutorial = training.tutorial()
    lines = [
        "| run | epochs | batch | test accuracy | time to >= 72% | wall time | source |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]

    def row(name: str, run: training.Run | None) -> str:
        if run is None:
            return f"| {name} | - | - | - | - | - | not recorded |"
        seconds = run.seconds_to_target
        to_target = "not reached" if seconds is None else f"{seconds:,.0f} s"
        wall = f"{run.wall_s:,.0f} s" if run.wall_s is not None else "-"
        return (
            f"| {name} ({run.recipe}) | {run.epochs} | {run.batch_size or '-'} | "
            f"{run.accuracy:.2%} | {to_target} | {wall} | `{run.source}` |"
        )

    lines += [row("shipped weights", shipped), row("tutorial loop", tutorial)]
    ok = None
    if shipped is not None:
        ok = (
            shipped.accuracy >= training.TARGET_ACCURACY
            and shipped.seconds_to_target is not None
            and shipped.seconds_to_target <= TRAINING_LIMIT_S
        )
    return lines, ok


def weights_env(folder: Path) -> tuple[dict[str, str], str]:
    if "APP_WEIGHTS" in os.environ:
        return {}, f"{os.environ['APP_WEIGHTS']} (APP_WEIGHTS)"
    if SHIPPED_WEIGHTS.is_file():
        return {}, str(SHIPPED_WEIGHTS.relative_to(ROOT))
    path = folder / "random.pth"
    torch.manual_seed(0)
    torch.save(Net().state_dict(), path)
    return {"APP_WEIGHTS": str(path)}, "random weights (app/weights/cifar_net.pth not found)"


@contextmanager
def timed(label: str) -> Iterator[None]:
    """Progress on stderr: the table alone goes to stdout."""
    start = time.perf_counter()
    print(f"{label} ...", file=sys.stderr, flush=True)
    yield
    print(f"{label}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)


@dataclass
class Beyond:
    """What the rest of a full run measured, beside the throughput rows."""

    page_load: tuple[list[str], bool | None] = ([], None)
    redraw: tuple[list[str], float | None] = ([], None)
    training: live.LiveResult | None = None
    engine_rows: list[engine.EngineRow] = field(default_factory=list)


def explainer_lines(url: str, edits: int) -> tuple[list[str], float | None]:
    """bench.explainer's table and its slowest median on / (ms), or why it was not measured."""
    try:
        return explainer.measure(url, edits)
    except (SystemExit, ImportError, RuntimeError) as e:  # no chromium or no playwright
        return [f"not measured: {e}"], None


def pinning() -> str:
    cpus = split()
    if cpus is None:
        return "not pinned to CPUs"
    servers, others = (",".join(map(str, sorted(c))) for c in cpus)
    return f"both on CPU {servers} (the load and the client on CPU {others})"


@contextmanager
def off_the_servers_cpu() -> Iterator[None]:
    """This process (its client requests, the load it starts) off the servers' CPU while the
    throughput rows run (bench/cpus.py); the rest (the browser, the live training's bare loop)
    runs where the scheduler puts it, as before."""
    cpus = load_cpus()
    if cpus is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def run(options: Options) -> list[str]:
    started = time.perf_counter()
    info = machine()
    load_before = load_average()
    scratch = Path(tempfile.mkdtemp(prefix="bench-"))
    env, weights = weights_env(scratch)
    all_cases, images = cases()
    measured: list[Measured] = []
    beyond = Beyond()
    everything = options.only is None  # --only: those throughput rows and nothing else

    with (
        Server("bench.floor:create_floor_app", factory=True, env=env) as floor,
        Server("app.main:app", env={**env, **options.app_env}) as app,
    ):
        with off_the_servers_cpu():
            for case in all_cases:
                if options.only is not None and options.only not in case.what:
                    continue
                with timed(case.what):
                    measured.append(measure(case, floor.url, app.url, options))
        if everything:
            with timed("first load of /"):
                beyond.page_load = page_lines(app.url)
            with timed("explainer redraw"):
                beyond.redraw = explainer_lines(app.url, options.edits)
            with timed("live training"):
                beyond.training = live.measure(
                    app.url, options.live_pairs, options.seconds * 2, options.app_env
                )
    if everything:
        with timed("engine"):
            beyond.engine_rows = engine.run(options.engine_sizes, options.engine_budget_s)
    loop, http = loop_and_http()
    elapsed = time.perf_counter() - started

    out = ["# Benchmark results", ""]
    out.append(
        f"Machine: {info['cpus']} CPUs ({info['cpu']}), Python {info['python']}, "
        f"torch {info['torch']} ({info['torch threads']} threads by default). "
        f"Load average before / after: {load_before} / {load_average()}."
    )
    out.append(
        f"Servers: uvicorn, 1 worker each, --loop {loop} --http {http}, no uvicorn access log, "
        f"{pinning()}. Load: {generator()}, {options.connections} keep-alive connections, "
        f"{options.pairs} pairs of {options.seconds:g} s runs (floor and app alternating, "
        f"after {options.warmup:g} s warm-up each). Weights: {weights}. Images: {images}. "
        f"Took {elapsed:.0f} s."
    )
    if options.app_env:
        settings = ", ".join(f"{k}={v}" for k, v in options.app_env.items())
        out.append(f"The app ran with {settings}.")
    out += ["", "## Throughput: the app against the floor", "", *http_table(measured)]
    if everything:
        out += beyond_lines(beyond)
    return out


def beyond_lines(beyond: Beyond) -> list[str]:
    engine_lines, engine_ok = engine_table(beyond.engine_rows)
    linear = engine.linearity(beyond.engine_rows)
    torch_linear = engine.linearity(beyond.engine_rows, of="torch_s")
    training_table, training_ok = training_lines()
    page_table, page_ok = beyond.page_load
    explainer_table, redraw_ms = beyond.redraw
    out = ["", "## Targets beyond throughput", ""]
    out += [
        "| what | measured | target | result |",
        "|---|---|---|---|",
    ]
    big = [r for r in beyond.engine_rows if r.rows >= 10_000]
    worst = max((r.ratio for r in big), default=float("nan"))
    out.append(
        f"| engine vs F.cross_entropy fwd+bwd, N >= 10,000 | worst {worst:.2f}x; "
        f"time/N max/min over N >= 10,000: engine {linear:.2f}, PyTorch {torch_linear:.2f} | "
        f"<= {ENGINE_LIMIT:g}x, linear (time/N spread <= 2x PyTorch's) | "
        f"{_verdict(engine_ok)} |"
    )
    if page_table and page_table[0].startswith("not measured"):
        out.append(f"| first load of / (gzip) | {page_table[0]} | <= 1.5 MB, all cacheable | - |")
    else:
        total = next((line for line in page_table if "**total**" in line), "")
        wire = total.split("**")[3] if total else "?"
        out.append(
            f"| first load of / (gzip) | {wire} bytes | <= 1.5 MB, all cacheable | "
            f"{_verdict(page_ok)} |"
        )
    budget = explainer.BUDGET_MS
    if redraw_ms is None:
        measured = explainer_table[0] if explainer_table else "not measured"
        out.append(
            f"| / explainer: input to every chart on screen redrawn | {measured} | "
            f"<= {budget:.0f} ms | - |"
        )
    else:
        out.append(
            f"| / explainer: input to every chart on screen redrawn, median (slowest of the "
            f"three scroll positions) | {redraw_ms:.1f} ms | <= {budget:.0f} ms | "
            f"{_verdict(redraw_ms <= budget)} |"
        )
    shipped = training.shipped()
    out.append(
        "| training to >= 72% | "
        + (
            "not recorded: app/weights/cifar_net.json not found"
            if shipped is None
            else f"{shipped.accuracy:.2%} in {shipped.seconds_to_target or float('nan'):,.0f} s "
            "to 72%"
        )
        + f" | <= {TRAINING_LIMIT_S / 60:.0f} min | {_verdict(training_ok)} |"
    )
    if beyond.training is not None:
        out.append(
            f"| live job vs bare PyTorch loop, images/s | {beyond.training.ratio:.2f}x | "
            f">= {live.TARGET:.2f}x | {_verdict(beyond.training.passed)} |"
        )
        out += ["", "## Live training: POST /train/live", "", *live.lines(beyond.training)]
    out += ["", "## The explainer in headless chromium (bench.explainer)", "", *explainer_table]
    out += ["", "## Engine: cross_entropy_stages against PyTorch (one torch thread)", ""]
    out += engine_lines
    out += ["", "## First load of /", "", *page_table]
    out += ["", "## Training", "", *training_table, ""]
    return out


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each load run")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 pair of 1 s runs")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--app-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for the app's server only, e.g. APP_TORCH_THREADS=1",
    )
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="leave the servers and the load where the scheduler puts them (see bench/cpus.py)",
    )
    parser.add_argument(
        "--only", help="only the throughput rows whose name contains this, and nothing else"
    )
    args = parser.parse_args(argv)
    if args.no_pin:
        os.environ[NO_PIN] = "1"  # read by bench.cpus, here and in the child processes
    app_env = dict(item.split("=", 1) for item in args.app_env)
    if args.quick:
        pairs, seconds, sizes, budget = 1, 1.0, engine.SIZES[:5], 0.1
    else:
        pairs, seconds, sizes, budget = args.pairs, args.seconds, engine.SIZES, 1.0
    return Options(
        pairs,
        seconds,
        1.0,
        args.connections,
        sizes,
        budget,
        args.out,
        app_env,
        args.only,
        live_pairs=1 if args.quick else 5,
        edits=5 if args.quick else 20,
    )


def main(argv: list[str] | None = None) -> None:
    options = parse_args(argv)
    lines = run(options)
    text = "\n".join(lines)
    print(text)
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(text)
    print(f"\nwritten to {options.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
