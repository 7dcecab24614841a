"""Which CPUs the servers and the load generator run on.

On a 2-core machine the scheduler moves a server and wrk between the cores: in some runs they
take turns on one core, in others not. On the development machine the 9 pairs of one row
(/predict with one JPEG) fell into two groups in one invocation, 0.54-0.65x and 0.76-0.89x.
Split, every server (the floor's and the app's alike) runs on the last CPU in every run, and
the load generator and this process run on the others while the throughput rows run (the
browser and the live training's bare loop are left where the scheduler puts them).
`python -m bench --no-pin` (or BENCH_NO_PIN=1) leaves everything where the scheduler puts it.
"""

import os
from collections.abc import Callable

NO_PIN = "BENCH_NO_PIN"


def split() -> tuple[set[int], set[int]] | None:
    """(the servers' CPUs, everything else's), or None where there is no split to make."""
    if os.environ.get(NO_PIN) or not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return {cpus[-1]}, set(cpus[:-1])


def server_cpus() -> set[int] | None:
    cpus = split()
    return None if cpus is None else cpus[0]


def load_cpus() -> set[int] | None:
    cpus = split()
    return None if cpus is None else cpus[1]


def pinned_to(cpus: set[int] | None) -> Callable[[], None] | None:
    """A preexec_fn that runs a child process on `cpus`; None (stay put) for None."""
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)
