"""A cap on request bodies: 413 before the app sees a byte too many, 408 for a body that stalls."""

import asyncio

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

BODY_TIMEOUT_S = 30.0


async def _reply(send: Send, status: int, detail: str) -> None:
    body = orjson.dumps({"detail": detail})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodySizeLimitMiddleware:
    """Reads the whole body (it is read whole anyway) and hands it on only if it is within the cap.

    `limits` maps a path to its cap; other paths get `default`.
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
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > cap):
            await _reply(send, 413, f"request body is larger than the {cap:,}-byte limit")
            return
        try:
            async with asyncio.timeout(BODY_TIMEOUT_S):
                body = await self._read(receive, cap)
        except TimeoutError:
            await _reply(send, 408, f"request body not received within {BODY_TIMEOUT_S:.0f} s")
            return
        if body is None:
            await _reply(send, 413, f"request body is larger than the {cap:,}-byte limit")
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
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # client went away; the app will see an empty body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)
