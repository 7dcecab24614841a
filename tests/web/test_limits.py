"""The body cap of the one middleware layer (EdgeMiddleware), driven with raw ASGI messages."""

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from starlette.types import Message, Receive, Scope, Send

from app.web.middleware import limits
from app.web.middleware.edge import EdgeMiddleware
from tests.conftest import HANG_GUARD_S, run_async

CAP = 100
UPLOAD_CAP = 1000


@dataclass
class Echo:
    """An inner app that reads the body to its end, records it (and each chunk's size) and what
    receive() gives after it, and answers 200 with the body's length."""

    bodies: list[bytes] = field(default_factory=list)
    chunks: list[list[int]] = field(default_factory=list)
    after: list[Message] = field(default_factory=list)  # what receive() gives after the body
    scopes: list[str] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(scope["type"])
        if scope["type"] != "http":
            return
        parts: list[bytes] = []
        while True:
            message = await receive()
            assert message["type"] == "http.request"
            parts.append(message["body"])
            if not message["more_body"]:
                break
        body = b"".join(parts)
        self.bodies.append(body)
        self.chunks.append([len(part) for part in parts])
        self.after.append(await receive())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(len(body)).encode()})


@dataclass
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes

    @property
    def detail(self) -> str:
        detail: str = orjson.loads(self.body)["detail"]
        return detail


def scope(path: str = "/loss", content_length: int | str | None = None) -> Scope:
    headers = [(b"content-type", b"application/json")]
    if content_length is not None:
        headers.append((b"content-length", str(content_length).encode()))
    return {"type": "http", "method": "POST", "path": path, "headers": headers}


def chunks(*parts: bytes) -> list[Message]:
    """http.request messages, more_body set on all but the last."""
    last = len(parts) - 1
    return [
        {"type": "http.request", "body": part, "more_body": i < last}
        for i, part in enumerate(parts)
    ]


def run(
    messages: Sequence[Message] | Callable[[], Awaitable[Message]],
    *,
    path: str = "/loss",
    content_length: int | str | None = None,
    inner: Echo | None = None,
) -> tuple[Answer, Echo, int]:
    """Drive the middleware; returns the answer, the inner app and how many messages were read."""
    inner = inner or Echo()
    middleware = EdgeMiddleware(inner, limits={"/predict": UPLOAD_CAP}, default=CAP)
    queue = list(messages) if not callable(messages) else []
    read = 0

    async def receive() -> Message:
        nonlocal read
        read += 1
        if callable(messages):
            return await messages()
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    run_async(middleware(scope(path, content_length), receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start") if sent else None
    if start is None:
        return Answer(0, {}, b""), inner, read
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Answer(start["status"], dict(start["headers"]), body), inner, read


def test_body_within_the_cap_is_handed_on_whole() -> None:
    answer, inner, _ = run(chunks(b"a" * 40, b"b" * 40, b"c" * 20))  # exactly CAP bytes
    assert answer.status == 200 and answer.body == b"100"
    assert inner.bodies == [b"a" * 40 + b"b" * 40 + b"c" * 20]
    assert inner.chunks == [[40, 40, 20]]


def test_over_the_cap_by_header_is_413_before_reading() -> None:
    answer, inner, read = run(chunks(b"x"), content_length=CAP + 1)
    assert answer.status == 413 and f"{CAP:,}-byte limit" in answer.detail
    assert orjson.loads(answer.body)["code"] == "body_too_large"
    assert orjson.loads(answer.body)["params"] == {"limit": CAP}
    assert read == 0 and inner.bodies == []
    assert answer.headers[b"content-type"] == b"application/json"
    assert b"connection" not in answer.headers  # the server drains the rest; no reset
    assert int(answer.headers[b"content-length"]) == len(answer.body)


def test_header_at_the_cap_is_read() -> None:
    answer, _, _ = run(chunks(b"x" * CAP), content_length=CAP)
    assert answer.status == 200


@pytest.mark.parametrize("value", ["12abc", "-1", "", "1e3", " 5"])
def test_content_length_that_is_not_a_number_is_400(value: str) -> None:
    answer, inner, read = run(chunks(b"x"), content_length=value)
    assert answer.status == 400 and answer.detail == "the Content-Length header is not a number"
    assert orjson.loads(answer.body)["code"] == "bad_content_length"
    assert answer.headers[b"connection"] == b"close"
    assert read == 0 and inner.bodies == []


def test_over_the_cap_while_streaming_is_413_without_reading_the_rest() -> None:
    parts = [b"x" * 30] * 10  # 300 bytes in all, no Content-Length
    answer, inner, read = run(chunks(*parts))
    assert answer.status == 413 and "limit" in answer.detail
    assert orjson.loads(answer.body)["code"] == "body_too_large"
    assert orjson.loads(answer.body)["params"] == {"limit": CAP}
    assert read == 4  # stopped at the chunk that crossed 100 bytes
    assert inner.bodies == []


def test_one_byte_over_the_cap_while_streaming() -> None:
    assert run(chunks(b"x" * CAP, b""))[0].status == 200
    assert run(chunks(b"x" * CAP, b"y"))[0].status == 413


def test_each_path_has_its_own_cap() -> None:
    body = chunks(b"x" * (CAP + 1))
    assert run(body, path="/loss")[0].status == 413
    assert run(body, path="/predict")[0].status == 200
    assert run(chunks(b"x" * (UPLOAD_CAP + 1)), path="/predict")[0].status == 413
    assert run(body, path="/predict/")[0].status == 413  # only the exact path has the upload cap
    assert run([], path="/predict", content_length=UPLOAD_CAP + 1)[0].status == 413


def stall_after(*parts: bytes, every: float = 0.0) -> Callable[[], Awaitable[Message]]:
    """A receive() that gives `parts` (more_body set), `every` seconds apart, then nothing."""
    queue = list(parts)

    async def receive() -> Message:
        if queue:
            await asyncio.sleep(every)
            return {"type": "http.request", "body": queue.pop(0), "more_body": True}
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return receive


def stall_for(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    monkeypatch.setattr(limits, "BODY_STALL_S", seconds)


def test_stalled_body_is_408(monkeypatch: pytest.MonkeyPatch) -> None:
    stall_for(monkeypatch, 0.05)
    answer, inner, _ = run(stall_after(b"{"))  # a first chunk arrives, then nothing more
    assert answer.status == 408
    assert answer.detail == "request body stalled: nothing received for 0.05 s"
    assert orjson.loads(answer.body)["code"] == "body_stalled"
    assert orjson.loads(answer.body)["params"] == {"seconds": 0.05}
    assert answer.headers[b"connection"] == b"close"
    assert inner.bodies == []


def test_the_stall_timeout_restarts_with_every_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow but steady body is never cut off: 40 chunks 0.05 s apart take 2 s in all, twice
    the timeout, and none of the gaps comes near it."""
    monkeypatch.setattr(limits, "BODY_STALL_S", 1.0, raising=False)
    monkeypatch.setattr(limits, "BODY_TIMEOUT_S", 1.0, raising=False)  # a deadline's name, before
    parts = [b"x"] * 40
    slow = stall_after(*parts, every=0.05)
    queue = [slow] * len(parts)

    async def receive() -> Message:
        if queue:
            return await queue.pop()()
        return {"type": "http.request", "body": b"", "more_body": False}

    answer, inner, _ = run(receive)
    assert answer.status == 200 and inner.bodies == [b"x" * 40]
    assert inner.chunks == [[1] * 40]


def drive(receive: Receive) -> Coroutine[Any, Any, Answer]:
    """The middleware on one request, as a coroutine to run beside others on one loop."""

    async def one() -> Answer:
        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        await EdgeMiddleware(Echo(), limits={}, default=CAP)(scope(), receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return Answer(start["status"], dict(start["headers"]), body)

    return one()


def test_each_body_has_its_own_stall_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bodies read at once share the loop's one timer, each with its own deadline: two that
    stall get 408 (the later one later), while a steady one, taking four times the timeout
    in all, is read whole."""
    stall_for(monkeypatch, 0.2)
    steady = [b"x"] * 16

    async def steady_receive() -> Message:
        if not steady:  # what the app reads after the body
            return {"type": "http.disconnect"}
        await asyncio.sleep(0.05)
        return {"type": "http.request", "body": steady.pop(), "more_body": bool(steady)}

    late_stall = stall_after(b"{", every=0.1)  # one chunk after 0.1 s, then nothing

    async def main() -> tuple[list[Answer], list[float]]:
        loop = asyncio.get_running_loop()
        ends: list[float] = []

        async def timed(receive: Receive) -> Answer:
            answer = await drive(receive)
            ends.append(loop.time() - begun)
            return answer

        begun = loop.time()
        answers = await asyncio.gather(
            timed(stall_after(b"{")), timed(steady_receive), timed(late_stall)
        )
        return list(answers), ends

    (first, kept, second), ends = run_async(main())
    assert (first.status, kept.status, second.status) == (408, 200, 408)
    assert kept.body == b"16"
    assert len(ends) == 3 and ends == sorted(ends)  # the first stall, the second, the steady
    assert ends[0] >= 0.2 and ends[1] >= 0.3


def test_a_later_stall_is_timed_after_an_earlier_one_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With nothing else coming in, the loop's timer, having expired the first stalled body,
    waits for the next deadline: the second body gets its 408 too, a chunk's time later."""
    stall_for(monkeypatch, 0.2)

    async def main() -> list[Answer]:
        first = drive(stall_after(b"{"))
        second = drive(stall_after(b"{", every=0.1))
        return list(await asyncio.wait_for(asyncio.gather(first, second), HANG_GUARD_S))

    answers = run_async(main())
    assert [answer.status for answer in answers] == [408, 408]


def test_a_cancellation_from_elsewhere_is_not_a_stall(monkeypatch: pytest.MonkeyPatch) -> None:
    """A request cancelled while its body is read (the server shutting down, say) is
    cancelled: the stall timer turns only its own cancellation into a 408."""
    stall_for(monkeypatch, 5.0)

    async def main() -> None:
        task = asyncio.ensure_future(drive(stall_after(b"{")))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run_async(main())
    assert all(not stalls.deadlines for stalls in limits._stalls.values())


def test_chunks_are_handed_on_as_they_came_with_the_loop_free_between_them() -> None:
    """The app gets the body a chunk at a time, and other tasks run between two chunks: a big
    body is never handed on (and parsed) in one go."""
    ticks = 0
    seen: list[int] = []

    class Counting(Echo):
        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            async def counted() -> Message:
                message = await receive()
                seen.append(ticks)
                return message

            await super().__call__(scope, counted, send)

    async def main() -> Answer:
        nonlocal ticks
        inner = Counting()
        middleware = EdgeMiddleware(inner, limits={}, default=CAP)
        queue = chunks(b"a" * 10, b"b" * 10, b"", b"c" * 10)
        sent: list[Message] = []

        async def receive() -> Message:
            return queue.pop(0) if queue else {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        ticker = asyncio.create_task(tick())
        await middleware(scope(), receive, send)
        ticker.cancel()
        assert inner.chunks == [[10, 10, 10]]  # the empty chunk is left out
        return Answer(sent[0]["status"], {}, sent[1]["body"])

    result: list[Answer] = []
    run_async(_collect(main(), result))
    assert result[0].status == 200 and result[0].body == b"30"
    # the ticker ran between the chunks: once, as the replay only yields (no real wait)
    assert seen[1] - seen[0] == seen[2] - seen[1] == 1, seen


async def _collect(coroutine: Coroutine[Any, Any, Answer], into: list[Answer]) -> None:
    into.append(await coroutine)


def test_body_cut_short_by_a_disconnect_is_never_handed_on() -> None:
    messages = [*chunks(b"x" * 10, b"y" * 10)[:1], {"type": "http.disconnect"}]
    answer, inner, _ = run(messages)
    assert answer.status == 0 and inner.bodies == []  # nothing sent: nobody is listening


def test_replay_gives_the_body_once_then_the_real_receive() -> None:
    answer, inner, _ = run(chunks(b'{"a":', b"1}"))
    assert answer.status == 200
    assert inner.bodies == [b'{"a":1}']
    assert inner.after == [{"type": "http.disconnect"}]  # the next receive() is the server's


def test_empty_body() -> None:
    answer, inner, _ = run(chunks(b""))
    assert answer.status == 200 and inner.bodies == [b""]


def test_other_scopes_pass_through_with_their_own_receive_and_send() -> None:
    """A lifespan (or websocket) scope goes to the app as it came, nothing read or capped."""
    got: list[Any] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        got.append(scope)
        got.append(await receive())
        await send({"type": "lifespan.startup.complete"})

    middleware = EdgeMiddleware(inner, limits={}, default=CAP)
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        sent.append(message)

    lifespan: dict[str, Any] = {"type": "lifespan"}
    run_async(middleware(lifespan, receive, send))
    assert got == [lifespan, {"type": "lifespan.startup"}]
    assert sent == [{"type": "lifespan.startup.complete"}]


def test_a_message_without_body_or_more_body_is_an_empty_last_chunk() -> None:
    """ASGI lets a server leave out "body" (b"") and "more_body" (False)."""
    answer, inner, _ = run([{"type": "http.request"}])
    assert answer.status == 200 and inner.bodies == [b""]
    answer, inner, _ = run(
        [{"type": "http.request", "body": b"ab", "more_body": True}, {"type": "http.request"}]
    )
    assert answer.status == 200 and inner.bodies == [b"ab"]


def test_a_body_that_never_starts_is_408(monkeypatch: pytest.MonkeyPatch) -> None:
    stall_for(monkeypatch, 0.05)
    answer, inner, _ = run(stall_after())  # headers, then not a byte of the body
    assert answer.status == 408 and inner.bodies == []


def test_the_stall_timers_of_closed_loops_are_let_go() -> None:
    """Each loop has one stall timer; those of loops that have closed go when a new one comes
    (loops still open, such as a test client's, stay)."""
    for _ in range(3):
        run(chunks(b"{}"))
    assert any(
        old.is_closed() for old in limits._stalls
    )  # the last run's (each drops those before)
    loop = asyncio.new_event_loop()
    try:
        limits._stalls_of(loop)
        assert loop in limits._stalls
        assert not any(old.is_closed() for old in limits._stalls)
    finally:
        limits._stalls.pop(loop, None)
        loop.close()
