"""A small keep-alive HTTP/1.1 load generator, for machines without wrk.

    python -m bench.pyload URL BODY_FILE CONTENT_TYPE SECONDS CONNECTIONS [HEADER: VALUE ...]

POSTs the file's bytes over CONNECTIONS keep-alive connections for SECONDS and prints JSON:
{"requests", "seconds", "errors", "p50_ms"}. It runs in its own process so that it does not share
the server's interpreter.
"""

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson


async def _connection(
    host: str, port: int, request: bytes, deadline: float, latencies: list[float]
) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    errors = 0
    try:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if not status_line.split(b" ")[1].startswith(b"2"):
                errors += 1
    finally:
        writer.close()
    return errors


async def run(
    url: str,
    body: bytes,
    content_type: str,
    seconds: float,
    connections: int,
    headers: list[str] | None = None,
) -> dict[str, Any]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = (
        f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        + "".join(f"{h}\r\n" for h in headers or [])
        + "\r\n"
    )
    request = head.encode() + body
    latencies: list[float] = []
    start = time.perf_counter()
    deadline = start + seconds
    counts = await asyncio.gather(
        *(_connection(host, port, request, deadline, latencies) for _ in range(connections))
    )
    elapsed = time.perf_counter() - start
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "errors": sum(counts),
        "p50_ms": statistics.median(latencies) * 1000 if latencies else None,
    }


def main() -> None:
    url, body_file, content_type, seconds, connections, *headers = sys.argv[1:]
    body = Path(body_file).read_bytes()
    result = asyncio.run(run(url, body, content_type, float(seconds), int(connections), headers))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
