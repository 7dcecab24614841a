"""Where a request's time goes, measured inside real requests (where the caches are cold).

    python -m bench.insitu CASE [--seconds 2]

CASE is one of bench.inprocess's. The functions a /loss or /predict request calls are wrapped
with a timer (time.perf_counter before and after each call), the request is driven back to back
through the app in process as bench.inprocess drives it, and the mean time of each function per
call is printed, with how many calls a request makes. A wrapper adds about a microsecond to
each call: compare like with like. cProfile (bench.inprocess --profile) slows Python calls far
more than C calls, which skews the shares; this does not.
"""

import argparse
import asyncio
import functools
import time
from collections.abc import Callable
from typing import Any

from bench import inprocess

# (module, attribute, label): what /loss and /predict call, as the routes look them up
WRAPPED = [
    ("app.web.service", "to_tensor", "to_tensor"),
    ("app.web.service", "cross_entropy_stages", "engine"),
    ("app.web.service", "stages_to_json", "stages_to_json"),
    ("app.web.service", "loss_stages", "loss_stages"),
    ("app.web.service", "loss_answer", "loss_answer"),
    ("app.web.service", "admit_each", "admit_each"),
    ("app.web.service", "decode", "decode"),
    ("app.web.service", "to_batch", "to_batch"),
    ("app.web.service", "preview_data_url", "preview_data_url"),
    ("app.web.service", "describe", "describe"),
    ("app.web.service", "predict", "predict"),
    ("app.web.api", "json_answer", "json_answer"),
    ("app.web.api", "predict_answer", "predict_answer"),
]

Totals = dict[str, list[float]]  # label -> [seconds, calls]


def timed(function: Callable[..., Any], label: str, totals: Totals) -> Callable[..., Any]:
    """`function` with its time added to totals[label] at each call."""

    def add(start: float) -> None:
        entry = totals.setdefault(label, [0.0, 0.0])
        entry[0] += time.perf_counter() - start
        entry[1] += 1

    if asyncio.iscoroutinefunction(function):

        @functools.wraps(function)
        async def wrapped_coroutine(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                add(start)

        return wrapped_coroutine

    @functools.wraps(function)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            add(start)

    return wrapped


def measure(case: str, seconds: float) -> tuple[float, int, Totals]:
    """CPU seconds per request, the request count and the totals of the wrapped functions."""
    import importlib

    totals: Totals = {}
    for module_name, attribute, label in WRAPPED:
        module = importlib.import_module(module_name)
        setattr(module, attribute, timed(getattr(module, attribute), label, totals))
    from app.web.app import create_app

    path, body = inprocess.CASES[case]()
    accept = inprocess.NPZ if case.startswith("npz") else ""
    _, cpu, count = asyncio.run(inprocess.run(create_app(), path, body, seconds, accept))
    return cpu, count, totals


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.insitu", description=__doc__)
    parser.add_argument("case", choices=sorted(inprocess.CASES))
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    cpu, count, totals = measure(args.case, args.seconds)
    print(f"{args.case}: {cpu * 1e6:,.0f} us of CPU per request ({count} requests)")
    for label, (spent, calls) in totals.items():
        per_call, per_request = spent / calls * 1e6, calls / (count + 1)
        print(f"  {label:20s} {per_call:9,.1f} us a call, {per_request:.1f} a request")


if __name__ == "__main__":
    main()
