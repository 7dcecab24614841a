"""Structured access logs: one line per request, plain or JSON (APP_LOG_JSON=1)."""

import asyncio
import logging
import re
import sys
import time
from typing import Any
from urllib.parse import quote

import orjson
from starlette.types import Scope

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


# Access lines are logged in batches. Logging one line (making its record, passing it to the
# handler, formatting and writing it) took 28 us of a small /loss request's CPU time, measured
# inside the request where the caches are cold (8 us in a loop). A request now keeps only its
# raw values, and the fields, logging's records and their handling are made for a whole batch
# at once: FLUSH_S after the first line of the batch, when BATCH lines are waiting, and when the
# app stops. A line keeps the time its request ended. (The app with and without log_access, the
# flushes included, as `python -m bench.inprocess fields8` drives it: 21 us apart with the
# fields built in the request, the path's escaping and the rounding among them; with them built
# at the flush, 11 us apart, measured with /loss answering a constant.)
FLUSH_S = 0.25
BATCH = 256
MESSAGE = "%s %s %s %sB %.1fms"
# (time.time() at the end, seconds taken, method, path, status, bytes, client)
_waiting: list[tuple[float, float, str, str, int, int, Any]] = []
_flush_on: asyncio.AbstractEventLoop | None = None  # the loop a flush of _waiting is due on


def log_access(scope: Scope, status: int, size: int, start: float) -> None:
    """Keep the request's line: method, path, status, bytes of body sent, milliseconds taken and
    the client. Status 500 when the app raised, 499 when the client went away unanswered."""
    if not access.isEnabledFor(logging.INFO):
        return
    taken = time.perf_counter() - start
    _waiting.append(
        (time.time(), taken, scope["method"], scope["path"], status, size, scope.get("client"))
    )
    if len(_waiting) >= BATCH:
        flush_access_log()
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # no event loop runs in this thread to flush it later: now
        flush_access_log()
        return
    if loop is not _flush_on:  # the first of a batch (or a flush is due on a loop now gone)
        _schedule_flush(loop)


def _schedule_flush(loop: asyncio.AbstractEventLoop) -> None:
    global _flush_on
    _flush_on = loop
    loop.call_later(FLUSH_S, flush_access_log)


def flush_access_log() -> None:
    """Log the lines kept so far, each as logging.Logger.info would have at its time."""
    global _flush_on
    _flush_on = None
    batch = _waiting[:]
    _waiting.clear()
    for created, taken, method, path, status, size, client in batch:
        fields = {
            "method": method,
            "path": loggable_path(path),
            "status": status,
            "bytes": size,
            "ms": round(taken * 1000, 2),
            "client": (client or ("-",))[0],
        }
        args = (method, fields["path"], status, size, fields["ms"])
        record = access.makeRecord(access.name, logging.INFO, "(unknown file)", 0, MESSAGE, args,
                                   None, extra={"fields": fields})  # fmt: skip
        late = record.created - created  # the record's times as LogRecord sets them, then
        record.created, record.msecs = created, int((created - int(created)) * 1000) + 0.0
        record.relativeCreated -= late * 1000
        access.handle(record)
