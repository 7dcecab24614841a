"""Gzip for clients that ask: Starlette's GZipMiddleware, deciding by the request's q-values."""

from starlette.datastructures import Headers
from starlette.middleware.gzip import (
    DEFAULT_EXCLUDED_CONTENT_TYPES,
    GZipMiddleware,
    GZipResponder,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.web.negotiation import NPZ, accepts_gzip

MINIMUM_BYTES = 1024
# Pages and small answers at level 6. Big answers (every stage of a large batch runs to megabytes
# of float64 digits) at level 1, and in a worker thread, off the event loop: on a 59 MB /loss
# answer level 1 took 2.5 s and level 6 took 14 s, for an answer 11% larger.
LEVEL = 6
FAST_LEVEL = 1
FAST_LEVEL_FROM_BYTES = 64 * 1024
# Fonts and pictures are compressed already; so are the static assets gzipped ahead of time,
# which carry their Content-Encoding and pass through untouched. The .npz answer is for speed:
# np.savez wrote a 4096 x 10 /loss answer in 2.2 ms, gzip level 1 took 62 ms on it.
EXCLUDED = (*DEFAULT_EXCLUDED_CONTENT_TYPES, "image/x-icon", "application/octet-stream", NPZ)


class _Responder(GZipResponder):
    """Starlette's gzip responder, at FAST_LEVEL for a body that starts with a big chunk, and
    given the excluded types as the middleware normalised them once (Starlette's own responder
    normalises its 18 types again for every request)."""

    def __init__(self, app: ASGIApp, minimum_size: int, excluded: tuple[str, ...]) -> None:
        super().__init__(
            app, minimum_size, LEVEL, thread_minimum_size=FAST_LEVEL_FROM_BYTES,
            exclude_content_types=(),
        )  # fmt: skip
        self.exclude_content_types = excluded

    async def apply_compression(self, body: bytes, *, more_body: bool) -> bytes:
        if len(body) >= FAST_LEVEL_FROM_BYTES:  # the level counts until the first compression
            self.compresslevel = FAST_LEVEL
        return await super().apply_compression(body, more_body=more_body)


class GzipMiddleware(GZipMiddleware):
    """Starlette's GZipMiddleware with its decision taken from the Accept-Encoding q-values.

    Starlette's own decision is a substring test ("gzip" in the header), so `gzip;q=0`, which
    refuses gzip, would get it. Everything else is Starlette's: answers of MINIMUM_BYTES or
    more, not of an excluded type and not already encoded, are compressed, bodies of
    FAST_LEVEL_FROM_BYTES or more in a worker thread."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(
            app,
            minimum_size=MINIMUM_BYTES,
            compresslevel=LEVEL,
            thread_minimum_size=FAST_LEVEL_FROM_BYTES,
            exclude_content_types=EXCLUDED,
        )

    def responder(self) -> ASGIApp:
        """The app wrapped for one request from a client that takes gzip."""
        return _Responder(self.app, self.minimum_size, self.exclude_content_types)

    def identity_vary(self, start: Message) -> None:
        """Add to an answer's start message what Starlette's identity responder (the answer to
        a client that takes no gzip) adds to it: `Vary: Accept-Encoding`, to an answer that
        would have been compressed for a client that takes gzip.

        Starlette's responder holds the start message back until the first chunk of the body
        says how big the answer is, at the cost of an object and a Headers for every request
        (14 us of a small /loss request's CPU time in process: the app with and without it,
        `python -m bench.inprocess fields8`). Here the Content-Length says it, which every
        answer but a stream carries; a stream of an unknown length gets Vary, whatever the size
        of its first chunk."""
        raw = start.get("headers") or []
        varies, length, media_type = [], None, ""
        for name, value in raw:
            name = name.lower()
            if name == b"content-encoding":
                return  # already encoded: passed on as it is
            if name == b"content-length":
                length = value
            elif name == b"content-type":
                media_type = value.decode("latin-1").partition(";")[0].strip().lower()
            elif name == b"vary":
                varies.append(value)
        if start["status"] == 206 or self._excluded(media_type):
            return
        if length is not None and length.isdigit() and int(length) < self.minimum_size:
            return  # too small to compress
        varies.append(b"Accept-Encoding")
        start["headers"] = [(n, v) for n, v in raw if n.lower() != b"vary"]
        start["headers"].append((b"vary", b", ".join(varies)))

    def _excluded(self, media_type: str) -> bool:
        """Starlette's test of a media type against the excluded ones."""
        media_types = {media_type, media_type.partition("/")[0] + "/*"}
        if media_type.startswith("application/grpc+"):
            media_types.add("application/grpc")
        return not media_types.isdisjoint(self.exclude_content_types)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if accepts_gzip(Headers(scope=scope).get("accept-encoding")):
            await self.responder()(scope, receive, send)
            return

        async def identity(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.identity_vary(message)
            await send(message)

        await self.app(scope, receive, identity)
