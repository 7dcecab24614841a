"""Serve an ASGI app in its own uvicorn process, one worker, on a free loopback port."""

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx

from bench.cpus import pinned_to, server_cpus

ROOT = Path(__file__).resolve().parent.parent


def loop_and_http() -> tuple[str, str]:
    """uvloop + httptools where installed (uvicorn[standard]), else asyncio + h11."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return loop, http


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """`with Server("app.main:app") as s: s.url` — the same uvicorn settings for every app."""

    def __init__(
        self,
        target: str,
        factory: bool = False,
        env: dict[str, str] | None = None,
        cwd: Path = ROOT,
    ) -> None:
        self.target = target
        self.factory = factory
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(tempfile.mkstemp(prefix="bench-server-", suffix=".log")[1])
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        loop, http = loop_and_http()
        command = [sys.executable, "-m", "uvicorn", self.target, "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--workers", "1", "--loop", loop, "--http", http]
        command += ["--no-access-log", "--log-level", "warning"]
        return [*command, "--factory"] if self.factory else command

    def start(self, timeout_s: float = 90.0) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=pinned_to(server_cpus()),
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.target} exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.target} did not answer /health within {timeout_s:.0f} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> "Server":
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
        self.log.unlink(missing_ok=True)
