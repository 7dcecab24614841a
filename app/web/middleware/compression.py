"""Gzip for clients that ask: Starlette's GZipMiddleware, deciding by the request's q-values."""

from starlette.datastructures import Headers
from starlette.middleware.gzip import (
    DEFAULT_EXCLUDED_CONTENT_TYPES,
    GZipMiddleware,
    GZipResponder,
    IdentityResponder,
)
from starlette.types import ASGIApp, Receive, Scope, Send

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


class _Identity(IdentityResponder):
    """Starlette's responder for clients that take no gzip (it only adds Vary), given the
    excluded types as the middleware normalised them once: Starlette's own normalises its
    18 types again for every request."""

    def __init__(self, app: ASGIApp, minimum_size: int, excluded: tuple[str, ...]) -> None:
        super().__init__(app, minimum_size, exclude_content_types=())
        self.exclude_content_types = excluded


class _Responder(GZipResponder):
    """Starlette's gzip responder, at FAST_LEVEL for a body that starts with a big chunk (and
    the excluded types normalised once, as _Identity)."""

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

    def responder(self, accept_encoding: str | None) -> ASGIApp:
        """The app wrapped for one request: gzip if its Accept-Encoding allows it, else as is
        (Starlette's identity responder, which only adds Vary: Accept-Encoding)."""
        kind = _Responder if accepts_gzip(accept_encoding) else _Identity
        return kind(self.app, self.minimum_size, self.exclude_content_types)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        responder = self.responder(Headers(scope=scope).get("accept-encoding"))
        await responder(scope, receive, send)
