"""Load from a second process: wrk when installed (C, keep-alive), else bench.pyload."""

import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.cpus import load_cpus, pinned_to
from bench.payloads import Body

WRK_SCRIPT = """\
local f = assert(io.open({path}, "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = {content_type}
{extra}"""


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    errors: int  # non-2xx answers and socket errors
    p50_ms: float | None

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def generator() -> str:
    """Which load generator runs: "wrk" or "python"."""
    return "wrk" if shutil.which("wrk") else "python"


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal for these


class Load:
    """A body written once to disk, fired at a URL for a fixed time by the load generator."""

    def __init__(
        self, body: Body, connections: int = 4, headers: dict[str, str] | None = None
    ) -> None:
        self.body = body
        self.connections = connections
        self.headers = headers or {}
        self.folder = Path(tempfile.mkdtemp(prefix="bench-load-"))
        self.body_path = self.folder / "body"
        self.body_path.write_bytes(body.data)
        self.script = self.folder / "post.lua"
        self.script.write_text(
            WRK_SCRIPT.format(
                path=_lua_string(str(self.body_path)),
                content_type=_lua_string(body.content_type),
                extra="".join(
                    f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}\n"
                    for k, v in self.headers.items()
                ),
            )
        )

    def run(self, url: str, seconds: float) -> LoadResult:
        if generator() == "wrk":
            return self._wrk(url, seconds)
        return self._python(url, seconds)

    def _wrk(self, url: str, seconds: float) -> LoadResult:
        command = [
            "wrk",
            "-t1",
            f"-c{self.connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "30s",
            "--latency",
            "-s",
            str(self.script),
            url,
        ]
        out = subprocess.run(
            command, capture_output=True, text=True, check=True, preexec_fn=pinned_to(load_cpus())
        ).stdout
        return parse_wrk(out)

    def _python(self, url: str, seconds: float) -> LoadResult:
        command = [
            sys.executable,
            "-m",
            "bench.pyload",
            url,
            str(self.body_path),
            self.body.content_type,
            str(seconds),
            str(self.connections),
            *(f"{k}: {v}" for k, v in self.headers.items()),
        ]
        out = subprocess.run(
            command, capture_output=True, text=True, check=True, preexec_fn=pinned_to(load_cpus())
        ).stdout
        data = json.loads(out)
        return LoadResult(data["requests"], data["seconds"], data["errors"], data["p50_ms"])

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def parse_wrk(out: str) -> LoadResult:
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", out)
    if done is None:
        raise RuntimeError(f"could not read wrk's output:\n{out}")
    errors = 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        errors += int(non2xx.group(1))
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket:
        errors += sum(int(x) for x in socket.groups())
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s|m)\b", out)
    return LoadResult(
        requests=int(done.group(1)),
        seconds=_ms(done.group(2), done.group(3)) / 1000,
        errors=errors,
        p50_ms=_ms(p50.group(1), p50.group(2)) if p50 else None,
    )
