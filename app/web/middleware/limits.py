"""A cap on request bodies: 413 before the app sees a byte too many, 408 for a body that stalls."""

import asyncio

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

BODY_TIMEOUT_S = 30.0


class _ClientGone(Exception):
    """The client disconnected before its body was complete: nobody is left to answer."""


async def _reply(send: Send, status: int, detail: str, close: bool = False) -> None:
    """Answer before the body is read in full.

    After a 413 the server reads and drops the rest of the body and keeps the connection:
    closing it while the client is still sending would reset it, and the client would lose
    the answer. close=True is for a body that stalled or whose length cannot be known.
    """
    body = orjson.dumps({"detail": detail})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodySizeLimitMiddleware:
    """Reads the whole body (it is read whole anyway) and hands it on only if it is within the cap.

    `limits` maps a path to its cap; other paths get `default`. A body cut short by a disconnect
    is never handed on: the app would compute an answer from part of it, for no one.
    """

    def __init__(self, app: ASGIApp, limits: dict[str, int], default: int) -> None:
        self.app = app
        self.limits = limits
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.limits.get(scope["path"], self.default)
        too_large = f"request body is larger than the {cap:,}-byte limit"
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _reply(send, 400, "the Content-Length header is not a number", close=True)
                return
            if int(declared) > cap:
                await _reply(send, 413, too_large)
                return
        try:
            async with asyncio.timeout(BODY_TIMEOUT_S):
                body = await self._read(receive, cap)
        except TimeoutError:
            detail = f"request body not received within {BODY_TIMEOUT_S:g} s"
            await _reply(send, 408, detail, close=True)
            return
        except _ClientGone:
            return
        if body is None:
            await _reply(send, 413, too_large)
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _read(receive: Receive, cap: int) -> bytes | None:
        """The whole body, or None as soon as it is over the cap."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)
