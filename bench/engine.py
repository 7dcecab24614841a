"""The engine (cross_entropy_stages) against PyTorch's own forward + backward of F.cross_entropy.

Both get the same float64 (N, 10) logits and class-index targets, in the same process on one
torch thread (a second intra-op thread only adds noise on a 2-core machine that also runs the
load generator or anything else); each is timed as the median of interleaved runs. The JSON
column stops at the API's cap on values per request (APP_MAX_LOGITS): /loss never serializes
more.
"""

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from app.engine import cross_entropy_stages
from app.web.serialize import OrjsonResponse, stages_to_json
from app.web.settings import get_settings

SIZES: tuple[int, ...] = (1, 10, 100, 1_000, 10_000, 100_000, 1_000_000)
CLASSES = 10


@dataclass(frozen=True)
class EngineRow:
    rows: int
    engine_s: float  # cross_entropy_stages
    torch_s: float  # F.cross_entropy forward + backward
    answer_s: float | None  # stages_to_json and JSON bytes (not part of the target); None: over cap

    @property
    def ratio(self) -> float:
        return self.engine_s / self.torch_s


def _torch_forward_backward(logits: torch.Tensor, target: torch.Tensor) -> None:
    z = logits.detach().requires_grad_(True)
    F.cross_entropy(z, target).backward()


def _time_pair(
    a: Callable[[], object], b: Callable[[], object], budget_s: float, min_runs: int = 3
) -> tuple[float, float]:
    """Median seconds per call of a and b, run alternately until budget_s is spent."""
    a(), b()  # warm up: first-call allocations and dispatch caches
    times_a: list[float] = []
    times_b: list[float] = []
    spent = 0.0
    while len(times_a) < min_runs or spent < budget_s:
        for f, out in ((a, times_a), (b, times_b)):
            start = time.perf_counter()
            f()
            elapsed = time.perf_counter() - start
            out.append(elapsed)
            spent += elapsed
        if len(times_a) >= 10_000:
            break
    return statistics.median(times_a), statistics.median(times_b)


def measure(rows: int, budget_s: float = 1.0, seed: int = 0) -> EngineRow:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, CLASSES, dtype=torch.float64, generator=generator) * 2
    target = torch.randint(0, CLASSES, (rows,), generator=generator)
    engine_s, torch_s = _time_pair(
        lambda: cross_entropy_stages(logits, target),
        lambda: _torch_forward_backward(logits, target),
        budget_s,
    )
    answer_s: float | None = None
    if logits.numel() <= get_settings().max_logits:
        stages = cross_entropy_stages(logits, target)
        answer_s, _ = _time_pair(
            lambda: OrjsonResponse(stages_to_json(stages)).body, lambda: None, budget_s / 4, 1
        )
    return EngineRow(rows, engine_s, torch_s, answer_s)


def run(sizes: tuple[int, ...] = SIZES, budget_s: float = 1.0) -> list[EngineRow]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return [measure(n, budget_s) for n in sizes]
    finally:
        torch.set_num_threads(threads)


def linearity(rows: list[EngineRow], from_rows: int = 10_000, of: str = "engine_s") -> float:
    """max / min of seconds per row (of the engine, or of torch with of="torch_s") over
    N >= from_rows: 1.0 is perfectly linear; memory-bound sizes raise it for both."""
    per_row = [getattr(r, of) / r.rows for r in rows if r.rows >= from_rows]
    return max(per_row) / min(per_row) if per_row else float("nan")
