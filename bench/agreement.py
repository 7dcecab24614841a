"""How often the engine's numbers are PyTorch's bit for bit, on this CPU.

    python -m bench.agreement [--cases 20]

Random float64 logits (N from 1 to 1,000 rows, C from 2 to 17 classes, times 3) with class-index
targets, `--cases` of each size: the engine's log_probs against F.log_softmax and its loss
against F.cross_entropy for each reduction, counted where they differ at all (torch.equal) and
where they differ by more than 2 ulps. Not a test of the engine (tests/ compare it with PyTorch
to a tolerance): a measure of what the CPU's kernels do. Where PyTorch's kernels run AVX-512
they agreed bit for bit; where they run AVX2, about a third of the losses differ in the last
bit (see app/engine/loss.py).
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


def tally(result: Agreement, name: str, ours: torch.Tensor, theirs: torch.Tensor) -> None:
    result.cases[name] += 1
    if not torch.equal(ours, theirs):
        result.differ[name] += 1
        if ulps_apart(ours, theirs) > 2:
            result.beyond_2_ulps[name] += 1


def measure(cases: int, seed: int = 0) -> Agreement:
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
