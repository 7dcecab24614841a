"""Access logs: one line per request, plain or JSON, with method, path, status, bytes and ms."""

import asyncio
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient

from app.web.middleware import logs
from app.web.middleware.edge import EdgeMiddleware
from app.web.middleware.logs import (
    PATH_SAFE,
    JsonFormatter,
    flush_access_log,
    log_access,
    loggable_path,
)
from app.web.settings import Settings
from bench.server import ROOT, free_port
from tests.conftest import build_app, run_async

PLAIN = re.compile(
    r"^\S+ \S+ INFO app\.access (?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d{3}) "
    r"(?P<bytes>\d+)B (?P<ms>\d+\.\d)ms$"
)


@pytest.fixture(autouse=True)
def keep_logging() -> Iterator[None]:
    """The app's lifespan sets up the "app" logger; put it back as it was afterwards."""
    logger = logging.getLogger("app")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


def serve(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> tuple[TestClient, list[tuple[int, int]]]:
    """Start the app (its lifespan logs to the captured stderr); send a few requests and
    return the client with each answer's status and body size."""
    app = build_app(settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    client = TestClient(app, raise_server_exceptions=False)
    answers = []
    with client:
        flush_access_log()  # lines that earlier tests' apps left waiting, ended with their loops
        capsys.readouterr()  # drop them and the start-up lines
        for response in (
            client.get("/health"),
            client.post("/loss", json={"logits": [1.0, 2.0], "target": 1}),
            client.post("/loss", content=b"{", headers={"content-type": "application/json"}),
            client.get("/nowhere%0aFAKE 200 1B 1.0ms"),
            client.get("/boom"),
        ):
            answers.append((response.status_code, len(response.content)))
    return client, answers


EXPECTED = [
    ("GET", "/health", 200),
    ("POST", "/loss", 200),
    ("POST", "/loss", 400),
    ("GET", "/nowhere%0AFAKE%20200%201B%201.0ms", 404),
    ("GET", "/boom", 500),
]


def logged_size(status: int, size: int) -> int:
    """An unhandled error's 500 is sent by Starlette's outermost middleware, outside the log's
    view: it logs 0 bytes for it."""
    return 0 if status == 500 else size


def test_plain_lines(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    _, answers = serve(settings, capsys)
    lines = [line for line in capsys.readouterr().err.splitlines() if " app.access " in line]
    assert len(lines) == len(EXPECTED)  # the newline in a path did not start a line of its own
    for line, (method, path, status), (code, size) in zip(lines, EXPECTED, answers, strict=True):
        match = PLAIN.match(line)
        assert match, line
        assert (match["method"], match["path"], match["status"]) == (method, path, str(status))
        assert code == status and int(match["bytes"]) == logged_size(status, size)
        assert float(match["ms"]) >= 0


def test_json_lines(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    _, answers = serve(settings.model_copy(update={"log_json": True}), capsys)
    entries = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    access = [e for e in entries if e["logger"] == "app.access"]
    assert len(access) == len(EXPECTED)
    for entry, (method, path, status), (_, size) in zip(access, EXPECTED, answers, strict=True):
        assert (entry["method"], entry["path"], entry["status"]) == (method, path, status)
        assert entry["bytes"] == logged_size(status, size) and isinstance(entry["bytes"], int)
        assert isinstance(entry["ms"], float) and entry["ms"] >= 0
        assert entry["client"] == "testclient" and entry["level"] == "INFO"
        assert entry["message"].startswith(f"{method} ")
    (error,) = [e for e in entries if e["level"] == "ERROR"]
    assert "GET /boom" in error["message"]
    assert "RuntimeError: boom" in error["exception"]  # the traceback is kept in JSON form


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_request_left_unanswered_is_499() -> None:
    async def leaves(scope: object, receive: object, send: object) -> None:
        return  # the client went away before its body arrived; nothing was sent

    async def receive() -> dict[str, str]:
        return {"type": "http.disconnect"}

    async def send(message: object) -> None:
        raise AssertionError("nothing to send")

    handler = Records()
    access = logging.getLogger("app.access")
    access.addHandler(handler)
    try:
        scope: dict[str, Any] = {"type": "http", "method": "POST", "path": "/predict"}
        scope |= {"headers": [], "client": ("1.2.3.4", 5)}
        run_async(EdgeMiddleware(leaves, limits={}, default=1000)(scope, receive, send))
        flush_access_log()
    finally:
        access.removeHandler(handler)
    (record,) = handler.records
    line = json.loads(JsonFormatter().format(record))
    assert (line["status"], line["bytes"], line["path"]) == (499, 0, "/predict")
    assert line["client"] == "1.2.3.4"


def test_a_kept_line_is_logged_as_logger_info_would_have_at_its_time() -> None:
    """A line logged by a later flush carries its request's times (created, msecs,
    relativeCreated), not the flush's, and what Logger.info sets without caller information."""
    handler = Records()
    access = logging.getLogger("app.access")
    access.addHandler(handler)
    scope = {"method": "GET", "path": "/health", "client": ("1.2.3.4", 5)}
    try:
        before = time.time()
        log_access(scope, 200, 12, time.perf_counter())
        after = time.time()
        time.sleep(0.2)  # the flush comes later; the line keeps the earlier time
        flush_access_log()
        now = logging.makeLogRecord({})
    finally:
        access.removeHandler(handler)
    (record,) = handler.records
    assert before <= record.created <= after <= now.created - 0.2
    assert record.msecs == int((record.created - int(record.created)) * 1000)
    expected = now.relativeCreated - (now.created - record.created) * 1000
    assert record.relativeCreated == pytest.approx(expected, abs=0.01)
    assert (record.name, record.levelname, record.pathname, record.lineno) == (
        "app.access",
        "INFO",
        "(unknown file)",
        0,
    )
    assert record.getMessage().startswith("GET /health 200 12B ")


def test_logged_paths_are_one_field_of_one_line() -> None:
    assert loggable_path("/static/js/app.js") == "/static/js/app.js"
    assert loggable_path("/a b\nc\r\x1b[31m") == "/a%20b%0Ac%0D%1B%5B31m"
    assert loggable_path("/猫") == "/%E7%8C%AB"
    assert loggable_path("/a b(c):d") == "/a%20b(c):d"  # what PATH_SAFE keeps stays as it is


def test_the_fast_path_for_safe_paths_is_quote() -> None:
    """Paths of safe characters only are logged as they are, without quote(): the same text."""
    for code in [*range(0x300), 0x732B, 0x1F600]:
        path = f"/a{chr(code)}b"
        assert loggable_path(path) == quote(path, safe=PATH_SAFE), repr(path)


def test_python_m_app_logs_every_line_as_json_with_app_log_json(tmp_path: Path) -> None:
    """`python -m app` (the Dockerfile's command) with APP_LOG_JSON=1: uvicorn's own lines
    (start-up, shut-down) are JSON too, not only the app's."""
    port = free_port()
    env = {**os.environ, "APP_LOG_JSON": "1", "APP_DEVICE": "cpu", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "app", "--port", str(port)]
    with subprocess.Popen(
        command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True
    ) as server:
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and server.poll() is None:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
        finally:
            server.terminate()
            _, err = server.communicate(timeout=30)
    lines = [line for line in err.splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line: JSON
    loggers = {entry["logger"] for entry in entries}
    assert {"uvicorn.error", "app", "app.access"} <= loggers, lines
    assert any("Uvicorn running on" in entry["message"] for entry in entries), lines


def test_a_line_is_written_soon_after_its_request_with_its_time(settings: Settings) -> None:
    """Access lines are logged in batches: a line comes out FLUSH_S after its request while the
    app keeps running (not only when it stops), stamped with the time its request ended."""
    handler = Records()
    access = logging.getLogger("app.access")
    with TestClient(build_app(settings)) as client:
        access.addHandler(handler)
        try:
            before = time.time()
            assert client.get("/health").status_code == 200
            after = time.time()
            deadline = time.monotonic() + 10  # a hang guard; it takes FLUSH_S
            while not handler.records and time.monotonic() < deadline:
                time.sleep(0.02)
            written = time.time()
        finally:
            access.removeHandler(handler)
    (record,) = handler.records
    assert record.getMessage().startswith("GET /health 200 ")
    assert before <= record.created <= after < written
    assert record.msecs == int((record.created % 1) * 1000)


def test_lines_left_by_a_loop_that_ended_go_out_with_the_next_loops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The flush of a batch is due on the loop that kept its first line; if that loop ends
    first, the batch goes out with the next loop's flush, not at BATCH lines."""
    monkeypatch.setattr(logs, "FLUSH_S", 0.05)
    flush_access_log()
    handler = Records()
    access = logging.getLogger("app.access")
    access.addHandler(handler)
    scope = {"method": "GET", "path": "/health", "client": ("1.2.3.4", 5)}

    async def one_line(path: str, wait: float) -> None:
        log_access({**scope, "path": path}, 200, 12, time.perf_counter())
        await asyncio.sleep(wait)

    try:
        run_async(one_line("/first", 0.0))  # this loop ends before its flush
        assert handler.records == []
        run_async(one_line("/second", 0.3))
        paths = [record.args[1] for record in handler.records]  # type: ignore[index]
    finally:
        access.removeHandler(handler)
    assert paths == ["/first", "/second"]


def test_a_batch_is_flushed_once_with_each_lines_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines kept on one loop are flushed together, once, FLUSH_S after the first; each keeps
    its milliseconds (to 2 places) and its client ("-" without one)."""
    monkeypatch.setattr(logs, "FLUSH_S", 0.05)
    flush_access_log()
    flushes = 0
    real_flush = logs.flush_access_log

    def counted() -> None:
        nonlocal flushes
        flushes += 1
        real_flush()

    monkeypatch.setattr(logs, "flush_access_log", counted)
    handler = Records()
    access = logging.getLogger("app.access")
    access.addHandler(handler)

    async def three_lines() -> None:
        now = time.perf_counter()
        log_access({"method": "GET", "path": "/a", "client": ("1.2.3.4", 5)}, 200, 1, now - 12.5)
        log_access({"method": "GET", "path": "/b", "client": None}, 200, 1, now)
        log_access({"method": "GET", "path": "/c"}, 404, 1, now)
        await asyncio.sleep(0.3)

    try:
        run_async(three_lines())
    finally:
        access.removeHandler(handler)
    assert flushes == 1
    fields = [record.fields for record in handler.records]  # type: ignore[attr-defined]
    assert [f["path"] for f in fields] == ["/a", "/b", "/c"]
    assert [f["client"] for f in fields] == ["1.2.3.4", "-", "-"]
    assert 12_500 <= fields[0]["ms"] < 12_505 and fields[0]["ms"] == round(fields[0]["ms"], 2)
    for record in handler.records:  # made at the flush, timed as at the request's end
        start = logging._startTime  # type: ignore[attr-defined]  # what LogRecord counts from
        since_start = (record.created - start) * 1000
        assert record.relativeCreated == pytest.approx(since_start, abs=1e-3)
