"""The one middleware layer every HTTP request passes: the access log, the cap on the body, the
security headers and gzip, each written in its own module (logs, limits, security, compression).

They were four pure-ASGI layers. As one, a request crosses one coroutine and one wrapper of
`send` where it crossed four of each, its headers are read in one pass, and the security headers
go into the answer's raw list without a Headers object. In process, a small /loss request
(`fields=["loss"]`) spent about 100 us of CPU in the four layers and spends about 55 us in this
one, the access log's batches included (the app built with and without its middleware, driven
as `python -m bench.inprocess fields8` drives it, three runs each).

What each answer passes, from the app out: gzip (Starlette's responder, when the client takes
it; else the Vary header Starlette's identity responder would add, read off the start message),
then the security headers and the access log's count of the bytes sent. A refusal of the body
(400, 408, 413) is answered here, before the app sees the request, and logged.

Measured since, the same way: the access log's kept line, the stall timer and the identity
responder each cost 10-15 us, and now cost a few (see logs, limits and compression). With /loss
answering a constant (the layer's own cost, without the engine's code in the caches), the layer
went from 32 to 19 us (61 and 29 us with and without it, then 50 and 31).
"""

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.web.middleware.compression import GzipMiddleware
from app.web.middleware.limits import capped_body, refuse_declared
from app.web.middleware.logs import CLIENT_GONE, log_access
from app.web.middleware.security import add_security_headers
from app.web.negotiation import accepts_gzip


class EdgeMiddleware:
    """`limits` maps a path to its body cap; other paths get `default`."""

    def __init__(self, app: ASGIApp, limits: dict[str, int], default: int) -> None:
        self.app = app
        self.gzip = GzipMiddleware(app)
        self.limits = limits
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what is logged when the app raises: the error handler answers 500
        size = 0
        started = False

        async def send_out(message: Message) -> None:
            nonlocal status, size, started
            if message["type"] == "http.response.start":
                if not gzip:
                    self.gzip.identity_vary(message)
                add_security_headers(message)
                status, started = message["status"], True
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        declared = encoding = None
        for name, value in scope["headers"]:  # one pass; ASGI names are lower-case
            if name == b"content-length":
                declared = value
            elif name == b"accept-encoding" and encoding is None:
                encoding = value.decode("latin-1")
        gzip = accepts_gzip(encoding)
        cap = self.limits.get(scope["path"], self.default)
        try:
            if not await refuse_declared(send_out, declared, cap):
                body = await capped_body(receive, send_out, cap)  # None: refused, or client gone
                if body is not None:
                    app = self.gzip.responder() if gzip else self.app
                    await app(scope, body, send_out)
            if not started:
                status = CLIENT_GONE  # the client went away before anything was answered
        finally:
            log_access(scope, status, size, start)
