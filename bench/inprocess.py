"""Drive an ASGI app in process, without sockets: for profiling where a request's time goes.

    python -m bench.inprocess CASE [--app app|floor] [--profile [--sort tottime]]

CASE: loss8, fields8 (fields=["loss"]), loss4096, npz4096 (Accept: application/x-npz),
fields4096, predict1, predict32 or step4 (/step: 4 JPEGs and their labels, 1 step, as bench
runs it).

Runs the request back to back through the app's full middleware stack (lifespan included) and
prints the mean time per request; --profile prints cProfile's top functions as well (by
cumulative time, or by --sort: any of pstats' keys, such as tottime).
"""

import argparse
import asyncio
import cProfile
import pstats
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp, Message

from bench.payloads import Body, cifar_jpegs, loss_body, multipart_body


def scope(path: str, body: Body, accept: str = "") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", body.content_type.encode()),
            (b"content-length", str(len(body.data)).encode()),
            *([(b"accept", accept.encode())] if accept else []),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def request(app: ASGIApp, path: str, body: Body, accept: str = "") -> tuple[int, int]:
    """One request through the app: (status, response body bytes)."""
    sent = False
    status = 0
    size = 0

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body.data, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status, size
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            size += len(message.get("body", b""))

    await app(scope(path, body, accept), receive, send)
    return status, size


async def lifespan(app: ASGIApp) -> Callable[[], Awaitable[None]]:
    """Run the app's lifespan startup; return a coroutine function that shuts it down."""
    queue: asyncio.Queue[Message] = asyncio.Queue()
    started = asyncio.Event()
    stopped = asyncio.Event()
    await queue.put({"type": "lifespan.startup"})

    async def send(message: Message) -> None:
        if message["type"].startswith("lifespan.startup"):
            started.set()
        elif message["type"].startswith("lifespan.shutdown"):
            stopped.set()

    async def serve() -> None:
        await app({"type": "lifespan", "state": {}}, queue.get, send)

    task = asyncio.create_task(serve())
    await started.wait()

    async def shutdown() -> None:
        await queue.put({"type": "lifespan.shutdown"})
        await stopped.wait()
        await task

    return shutdown


NPZ = "application/x-npz"
CASES: dict[str, Callable[[], tuple[str, Body]]] = {
    "loss8": lambda: ("/loss", loss_body(8)),
    "fields8": lambda: ("/loss", loss_body(8, fields=["loss"])),
    "loss4096": lambda: ("/loss", loss_body(4096)),
    "npz4096": lambda: ("/loss", loss_body(4096)),  # with Accept: application/x-npz
    "fields4096": lambda: ("/loss", loss_body(4096, fields=["loss"])),
    "predict1": lambda: ("/predict", multipart_body(cifar_jpegs(1)[0])),
    "predict32": lambda: ("/predict", multipart_body(cifar_jpegs(32)[0])),
    "step4": lambda: ("/step", multipart_body(cifar_jpegs(32)[0][:4])),
}


async def run(
    app: ASGIApp, path: str, body: Body, seconds: float, accept: str = ""
) -> tuple[float, float, int]:
    """Mean wall seconds and CPU seconds (of this thread: threadpool work is not counted) per
    request over `seconds` of back-to-back requests, and their count."""
    shutdown = await lifespan(app)
    try:
        status, _ = await request(app, path, body, accept)
        if status != 200:
            raise RuntimeError(f"{path} answered {status}")
        count = 0
        start = time.perf_counter()
        cpu = time.thread_time()
        while time.perf_counter() - start < seconds:
            await request(app, path, body, accept)
            count += 1
        return (time.perf_counter() - start) / count, (time.thread_time() - cpu) / count, count
    finally:
        await shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__)
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--app", choices=["app", "floor"], default="app")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sort", default="cumulative", help="pstats sort key for --profile")
    args = parser.parse_args()
    if args.app == "floor":
        from bench.floor import create_floor_app

        app: ASGIApp = create_floor_app()
    else:
        from app.main import app as project_app

        app = project_app
    path, body = CASES[args.case]()
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    accept = NPZ if args.case.startswith("npz") else ""
    mean, cpu, count = asyncio.run(run(app, path, body, args.seconds, accept))
    if profiler:
        profiler.disable()
        pstats.Stats(profiler).sort_stats(args.sort).print_stats(40)
    print(
        f"{args.app} {args.case}: {mean * 1e6:,.0f} us per request, {cpu * 1e6:,.0f} us CPU on "
        f"the event loop's thread ({count} requests)"
    )


if __name__ == "__main__":
    main()
