"""Gzip for clients that ask: one middleware for pages and JSON, no cost for those that don't."""

import zlib

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MINIMUM_BYTES = 1024
# Big answers (every stage of a large batch runs to megabytes of float64 digits) at level 1: about
# 4x faster than level 5 for an answer under 10% larger. Pages and small answers at level 6.
FAST_LEVEL_FROM_BYTES = 64 * 1024
COMPRESSIBLE = (b"application/json", b"text/", b"application/javascript", b"image/svg+xml")


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header value allows gzip (a q=0 refuses it)."""
    for part in accept_encoding.lower().split(","):
        name, _, params = part.strip().partition(";")
        if name.strip() in ("gzip", "x-gzip", "*"):
            q = params.strip().removeprefix("q=")
            try:
                return not q or float(q) > 0
            except ValueError:
                return False
    return False


def gzip_bytes(data: bytes, level: int) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip framing
    return compressor.compress(data) + compressor.flush()


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


class GzipMiddleware:
    """Compresses whole (non-streamed) text and JSON answers of MINIMUM_BYTES or more.

    Answers that are already encoded (the precompressed static assets) pass through untouched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not accepts_gzip(_header(scope, b"accept-encoding")):
            await self.app(scope, receive, send)
            return
        start: Message | None = None

        async def compress(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if start is None:  # already passed on below
                await send(message)
                return
            head, start = start, None
            headers = MutableHeaders(raw=head["headers"])
            body = message.get("body", b"")
            if (
                message["type"] == "http.response.body"
                and not message.get("more_body", False)
                and len(body) >= MINIMUM_BYTES
                and "content-encoding" not in headers
                and headers.get("content-type", "").encode().startswith(COMPRESSIBLE)
            ):
                if len(body) >= FAST_LEVEL_FROM_BYTES:  # milliseconds of work: off the loop
                    body = await run_in_threadpool(gzip_bytes, body, 1)
                else:
                    body = gzip_bytes(body, 6)
                headers["content-encoding"] = "gzip"
                headers["content-length"] = str(len(body))
                headers.add_vary_header("Accept-Encoding")
                message = {**message, "body": body}
            await send(head)
            await send(message)

        await self.app(scope, receive, compress)
