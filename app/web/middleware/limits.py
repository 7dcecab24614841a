"""A cap on request bodies: 413 before the app sees a byte too many, 408 for a body that stalls.
(Run by the one middleware layer, app.web.middleware.edge.)"""

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

from starlette.types import Message, Receive, Send

from app.web.errors import error_body

# The longest wait for the next chunk of a body. Reset on every chunk, so a slow but steady
# client (a 5 MB photo over a 1 Mbit/s uplink takes 40 s) is never cut off; there is no total
# deadline: a body is capped in bytes, not in time.
BODY_STALL_S = 30.0


class _ClientGone(Exception):
    """The client disconnected before its body was complete: nobody is left to answer."""


async def _reply(
    send: Send, status: int, detail: str, code: str, params: dict[str, float], close: bool = False
) -> None:
    """Answer before the body is read in full.

    After a 413 the server reads and drops the rest of the body and keeps the connection:
    closing it while the client is still sending would reset it, and the client would lose
    the answer. close=True is for a body that stalled or whose length cannot be known.
    """
    body = error_body(detail, code, params)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def refuse_declared(send: Send, declared: bytes | None, cap: int) -> bool:
    """Answer 400 for a Content-Length that is not a number and 413 for one over the cap, before
    a byte of the body is read; whether it answered."""
    if declared is None:
        return False
    if not declared.isdigit():
        detail = "the Content-Length header is not a number"
        await _reply(send, 400, detail, "bad_content_length", {}, close=True)
        return True
    if int(declared) > cap:
        await _reply(send, 413, _too_large(cap), "body_too_large", {"limit": cap})
        return True
    return False


def _too_large(cap: int) -> str:
    return f"request body is larger than the {cap:,}-byte limit"


async def capped_body(receive: Receive, send: Send, cap: int) -> Receive | None:
    """Read the whole body (it is read whole anyway) and hand it on only if it is within the
    cap: a receive() that replays it chunk by chunk as it came, letting other requests run
    between chunks, so that the app parses each chunk as it gets it and no body, however big,
    is parsed in one go on the event loop. None when it answered instead: 413 over the cap,
    408 for a body that stalled. A body cut short by a disconnect is never handed on (None,
    nothing sent): the app would compute an answer from part of it, for no one."""
    try:
        chunks = await _read(receive, cap)
    except TimeoutError:
        detail = f"request body stalled: nothing received for {BODY_STALL_S:g} s"
        await _reply(send, 408, detail, "body_stalled", {"seconds": BODY_STALL_S}, close=True)
        return None
    except _ClientGone:
        return None
    if chunks is None:
        await _reply(send, 413, _too_large(cap), "body_too_large", {"limit": cap})
        return None

    first = True

    async def replay() -> Message:
        nonlocal first
        if not chunks:
            return await receive()
        if not first:
            await asyncio.sleep(0)  # let the loop serve others before the next chunk
        first = False
        chunk = chunks.popleft()  # handed on and let go: the app keeps what it needs
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    return replay


async def _read(receive: Receive, cap: int) -> deque[bytes] | None:
    """The whole body as the chunks it came in (at least one), or None as soon as it is over
    the cap. TimeoutError when no chunk comes for BODY_STALL_S."""
    chunks: deque[bytes] = deque()
    size = 0
    with _StallTimer() as restart:
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                return None
            if chunk or not chunks:
                chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks
            restart()  # the wait for the next chunk


# The stall timer is asyncio.timeout's, kept for every body being read by one timer per event
# loop rather than one each. asyncio.timeout schedules a timer for each request and cancels it
# at the end: 14 us of a small /loss request's CPU time in process (the app with and without a
# timer, `python -m bench.inprocess fields8`), more than the rest of the body's reading; a
# deadline here is a dict entry. The loop's one timer fires at the earliest deadline, cancels
# each task whose deadline has passed and waits for the next; the task turns the cancellation
# into TimeoutError as asyncio.timeout does (Task.uncancel), so a cancellation from elsewhere
# still cancels it.
class _Stalls:
    """The deadlines of one event loop's bodies, and its one timer."""

    def __init__(self) -> None:
        self.deadlines: dict[asyncio.Task[Any], float] = {}  # task -> loop time of its deadline
        self.expired: set[asyncio.Task[Any]] = set()  # tasks this timer cancelled
        self.timer: asyncio.TimerHandle | None = None

    def set(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
        deadline = loop.time() + BODY_STALL_S
        self.deadlines[task] = deadline
        if self.timer is None or deadline < self.timer.when():
            self._wake_at(loop, deadline)

    def _wake_at(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = loop.call_at(when, self._check, loop)

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        self.timer = None
        now = loop.time()
        for task, deadline in list(self.deadlines.items()):
            if deadline <= now:
                del self.deadlines[task]
                self.expired.add(task)
                task.cancel()
        if self.deadlines:
            self._wake_at(loop, min(self.deadlines.values()))


# Each running loop's _Stalls. A loop's timer refers to its loop, so a weak mapping would keep
# every loop anyway: those that have closed are dropped when a new loop comes.
_stalls: dict[asyncio.AbstractEventLoop, _Stalls] = {}


def _stalls_of(loop: asyncio.AbstractEventLoop) -> _Stalls:
    stalls = _stalls.get(loop)
    if stalls is None:
        for closed in [old for old in _stalls if old.is_closed()]:
            del _stalls[closed]
        stalls = _stalls[loop] = _Stalls()
    return stalls


class _StallTimer:
    """`with _StallTimer() as restart:` a deadline BODY_STALL_S away for the running task, and
    a function that moves it there again; TimeoutError out of the block when it passes (as
    `async with asyncio.timeout()`). A class, not a @contextmanager generator: this runs on
    every request."""

    __slots__ = ("cancelling", "loop", "stalls", "task")

    def __enter__(self) -> Callable[[], None]:
        self.loop = loop = asyncio.get_running_loop()
        stalls = _stalls_of(loop)
        task = asyncio.current_task()
        assert task is not None
        self.stalls, self.task, self.cancelling = stalls, task, task.cancelling()
        stalls.set(loop, task)
        return self.restart

    def restart(self) -> None:
        self.stalls.set(self.loop, self.task)

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        stalls, task = self.stalls, self.task
        stalls.deadlines.pop(task, None)  # gone already if the timer expired it
        if task in stalls.expired:
            stalls.expired.discard(task)
            if kind is asyncio.CancelledError and task.uncancel() <= self.cancelling:
                raise TimeoutError  # the timer's cancellation, and no other
