"""How often the engine's numbers are PyTorch's bit for bit, on this CPU.

    python -m bench.agreement [--cases 20]

Random float64 logits (N from 1 to 1,000 rows, C from 2 to 17 classes, times 3) with class-index
targets, `--cases` of each size: the engine's log_probs, softmax and log_sum_exp against
F.log_softmax, F.softmax and torch.logsumexp, and its loss against F.cross_entropy for each
reduction; then every other path (weights, ignored targets, label smoothing, probability
targets) on logits of shape (C), (N, C), (N, C, d) and (N, C, d1, d2). Counted where they
differ at all (NaN equal to NaN) and by more than 2 ulps. Since the engine runs PyTorch's
softmax kernels and sums in nll_loss's order, every count should be 0 on every CPU; before, on
an AVX2 CPU, about a third of the losses differed in the last bits (see app/engine/loss.py).
"""

import argparse
import math
from collections import Counter
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from app.engine.loss import cross_entropy_stages
from app.engine.stages import Reduction

ROWS = (1, 2, 3, 4, 5, 8, 16, 32, 64, 128, 1000)
CLASSES = (2, 3, 5, 10, 17)
REDUCTIONS: tuple[Reduction, ...] = ("mean", "sum", "none")


@dataclass
class Agreement:
    cases: Counter[str] = field(default_factory=Counter)  # what was compared, by name
    differ: Counter[str] = field(default_factory=Counter)  # not bit for bit
    beyond_2_ulps: Counter[str] = field(default_factory=Counter)


def ulps_apart(a: torch.Tensor, b: torch.Tensor) -> float:
    """The largest |a - b| in units of the last place of b's entries."""
    gap = (a - b).abs()
    unit = b.abs().apply_(math.ulp) if b.dim() else torch.tensor(math.ulp(b.item()))
    return float((gap / unit).max()) if gap.numel() else 0.0


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bit for bit, but any NaN equals any NaN (their payloads are not compared)."""
    return (
        a.shape == b.shape
        and torch.equal(a.isnan(), b.isnan())
        and torch.equal(
            a.nan_to_num(0.0, math.inf, -math.inf), b.nan_to_num(0.0, math.inf, -math.inf)
        )
    )


def tally(result: Agreement, name: str, ours: torch.Tensor, theirs: torch.Tensor) -> None:
    result.cases[name] += 1
    if not same(ours, theirs):
        result.differ[name] += 1
        if ulps_apart(ours, theirs) > 2:
            result.beyond_2_ulps[name] += 1


SHAPES = ("(C)", "(N, C)", "(N, C, d)", "(N, C, d1, d2)")


def logits_shape(shape: str, n: int, c: int) -> tuple[int, ...]:
    return {"(C)": (c,), "(N, C)": (n, c), "(N, C, d)": (n, c, 3), "(N, C, d1, d2)": (n, c, 2, 3)}[
        shape
    ]


def measure(cases: int, seed: int = 0) -> Agreement:
    """Class indices over ROWS x CLASSES, `cases` of each, against plain PyTorch; then every
    other path (weights, ignored targets, label smoothing, probability targets, extra dims),
    `cases` of each, on (N, C) for N in ROWS."""
    gen = torch.Generator().manual_seed(seed)
    result = Agreement()
    for n in ROWS:
        for c in CLASSES:
            for _ in range(cases):
                z = torch.randn(n, c, generator=gen, dtype=torch.float64) * 3
                t = torch.randint(0, c, (n,), generator=gen)
                for reduction in REDUCTIONS:
                    stages = cross_entropy_stages(z, t, reduction=reduction)
                    expected = F.cross_entropy(z, t, reduction=reduction)
                    tally(result, f"loss, {reduction}", stages.loss, expected)
                tally(result, "log_probs", stages.log_probs, F.log_softmax(z, 1))
                assert stages.softmax is not None and stages.log_sum_exp is not None
                tally(result, "softmax", stages.softmax, F.softmax(z, 1))
                tally(result, "log_sum_exp", stages.log_sum_exp, torch.logsumexp(z, 1))
    for shape in SHAPES:
        for n in ROWS:
            for _ in range(cases):
                c = int(torch.randint(2, 18, (), generator=gen))
                z = torch.randn(logits_shape(shape, n, c), generator=gen, dtype=torch.float64) * 3
                cd = 0 if z.dim() == 1 else 1
                batch = z.shape[:cd] + z.shape[cd + 1 :]
                t = torch.randint(0, c, batch, generator=gen)
                t = t.masked_fill(torch.rand(batch, generator=gen) < 0.3, -100)
                w = torch.rand(c, generator=gen, dtype=torch.float64) * 2
                p = torch.rand(z.shape, generator=gen, dtype=torch.float64).softmax(cd)
                for reduction in REDUCTIONS:
                    for name, target, weight, eps in (
                        ("weights", t.clamp(min=0), w, 0.0),
                        ("ignored", t, None, 0.0),
                        ("weights, ignored", t, w, 0.0),
                        ("smoothing", t, None, 0.1),
                        ("smoothing, weights, ignored", t, w, 0.1),
                        ("probabilities", p, None, 0.0),
                        ("probabilities, weights, smoothing", p, w, 0.1),
                    ):
                        stages = cross_entropy_stages(
                            z, target, weight, reduction=reduction, label_smoothing=eps
                        )
                        expected = F.cross_entropy(
                            z, target, weight, reduction=reduction, label_smoothing=eps
                        )
                        tally(result, f"loss, {reduction}, {name}, {shape}", stages.loss, expected)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=20, help="random cases of each size")
    args = parser.parse_args()
    result = measure(args.cases)
    print(f"PyTorch's CPU kernels: {torch.backends.cpu.get_cpu_capability()}")
    print("| compared | cases | not bit for bit | beyond 2 ulps |")
    print("|---|---:|---:|---:|")
    for name, count in result.cases.items():
        print(f"| {name} | {count:,} | {result.differ[name]:,} | {result.beyond_2_ulps[name]:,} |")


if __name__ == "__main__":
    main()
