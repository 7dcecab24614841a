"""Structured access logs: one line per request, plain or JSON (APP_LOG_JSON=1)."""

import logging
import re
import sys
import time
from typing import Any
from urllib.parse import quote

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access = logging.getLogger("app.access")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name}
        entry["message"] = record.getMessage()
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:  # the traceback of an unhandled error, which would otherwise be lost
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


PLAIN = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_logging(json_lines: bool) -> None:
    # No format shows the caller's file and line, the process, the thread or the
    # multiprocessing name: the logging HOWTO's "Optimization" section turns their collection
    # off this way (a walk up the stack and three look-ups for every access-log line).
    logging._srcfile = None
    logging.logProcesses = logging.logThreads = logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(PLAIN))
    root = logging.getLogger("app")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False


def uvicorn_log_config(json_lines: bool) -> dict[str, Any]:
    """uvicorn's log_config (a logging.config.dictConfig): its own lines (start-up, shut-down,
    errors) in the app's form, so that with json_lines every line on stderr is JSON. The loggers
    are uvicorn's own, as its default config sets them up."""
    formatter: dict[str, Any] = {"()": JsonFormatter} if json_lines else {"format": PLAIN}
    stderr = {"class": "logging.StreamHandler", "formatter": "app", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"app": formatter},
        "handlers": {"stderr": stderr},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        },
    }


# Logged for a request that got no answer because its client went away (nginx's convention).
CLIENT_GONE = 499


# Characters a logged path keeps as they are; anything else (spaces, control characters,
# non-ASCII) is percent-encoded, so "/a%0aFAKE 200" can neither forge a line nor a field.
PATH_SAFE = "/:@!$&'()*+,;=-._~%"


_SAFE_PATH = re.compile(r"[A-Za-z0-9/:@!$&'()*+,;=\-._~%]*")  # PATH_SAFE and what quote keeps


def loggable_path(path: str) -> str:
    return path if _SAFE_PATH.fullmatch(path) else quote(path, safe=PATH_SAFE)


class AccessLogMiddleware:
    """One line per request: method, path, status, bytes of body sent and milliseconds taken.

    The status is 500 when the app raised (the error handler answers 500) and 499 when it
    answered nothing because the client went away.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        size = 0
        started = False

        async def send_and_count(message: Message) -> None:
            nonlocal status, size, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_and_count)
            if not started:
                status = CLIENT_GONE
        finally:
            fields = {
                "method": scope["method"],
                "path": loggable_path(scope["path"]),
                "status": status,
                "bytes": size,
                "ms": round((time.perf_counter() - start) * 1000, 2),
                "client": (scope.get("client") or ("-",))[0],
            }
            access.info(
                "%s %s %s %sB %.1fms",
                fields["method"],
                fields["path"],
                status,
                size,
                fields["ms"],
                extra={"fields": fields},
            )
