"""Hostile load: does one client's worst request hold up everybody else?

    python -m bench.hostile [--rounds 3] [--out PATH]

Serves the app (app.main:app, the shipped weights) with bench/server.py, one uvicorn worker.
Three clients send, each in a loop for `rounds` rounds and all at once, the worst bodies the
caps let through:

- junk: a 45 MiB /predict upload, one part: a JPEG's first three bytes, then zeros;
- text PNGs: a /predict of 64 PNGs of 1x1 pixel, each with 64 zTXt chunks (distinct keywords)
  that inflate to 1 MiB apiece: 66 KB per picture, 4.3 MB in all;
- 9 MB JSON: a /loss request of 90,000 x 10 logits written with 6 decimals.

Meanwhile a probe sends GET /health every 0.1 s and a second client POST /predict of one CIFAR-10
JPEG every 0.25 s, each on its own connection, and the server's resident memory (VmRSS) is read
from /proc every 0.05 s. Targets: /health within 0.5 s each time, the one-JPEG /predict within
1 s, resident memory under 1 GiB. The report is printed (and written to --out if given).
"""

import argparse
import io
import os
import statistics
import struct
import sys
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from PIL import Image

from bench.payloads import BOUNDARY, Body, cifar_jpegs, loss_body, multipart_body
from bench.server import Server

HEALTH_TARGET_S = 0.5
PREDICT_TARGET_S = 1.0
RSS_TARGET_BYTES = 1 << 30
JUNK_BYTES = 45 * 1024 * 1024
TEXT_PNGS = 64
TEXT_CHUNKS = 64
TEXT_INFLATED = 1024 * 1024
JSON_ROWS = 90_000


def junk_jpeg(size: int = JUNK_BYTES) -> bytes:
    """A JPEG's start-of-image marker and the first byte of the next marker, then zeros."""
    return b"\xff\xd8\xff" + bytes(size - 3)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def text_png(chunks: int = TEXT_CHUNKS, inflated: int = TEXT_INFLATED) -> bytes:
    """A 1x1 PNG with `chunks` zTXt chunks, distinct keywords, each inflating to `inflated`."""
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1), (200, 30, 30)).save(buffer, format="PNG")
    png = buffer.getvalue()
    text = zlib.compress(bytes(inflated), 9)
    extra = b"".join(_chunk(b"zTXt", b"k%d\0\0" % i + text) for i in range(chunks))
    ihdr_end = 8 + 25  # the signature, then IHDR: length, type, 13 bytes, CRC
    return png[:ihdr_end] + extra + png[ihdr_end:]


def upload_body(files: list[tuple[str, bytes]]) -> Body:
    """multipart/form-data with one `image` part per (filename, bytes)."""
    out = io.BytesIO()
    for name, data in files:
        out.write(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; '
            f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
        )
        out.write(data)
        out.write(b"\r\n")
    out.write(f"--{BOUNDARY}--\r\n".encode())
    return Body(out.getvalue(), f"multipart/form-data; boundary={BOUNDARY}")


@dataclass(frozen=True)
class Attack:
    name: str
    path: str
    body: Body


def attacks() -> list[Attack]:
    png = text_png()
    return [
        Attack("junk 45 MiB upload", "/predict", upload_body([("junk.jpg", junk_jpeg())])),
        Attack(
            "64 text-chunk PNGs",
            "/predict",
            upload_body([(f"text-{i}.png", png) for i in range(TEXT_PNGS)]),
        ),
        Attack("9 MB JSON", "/loss", loss_body(JSON_ROWS)),
    ]


@dataclass
class Series:
    """Latencies (seconds) of one kind of request, and any status other than 200."""

    seconds: list[float] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)

    def row(self, name: str, target: float | None = None) -> str:
        if not self.seconds:
            return f"| {name} | 0 | - | - | {'; '.join(self.bad) or '-'} |"
        worst = max(self.seconds)
        verdict = "" if target is None else (" ok" if worst <= target else " **over**")
        return (
            f"| {name} | {len(self.seconds)} | {statistics.median(self.seconds):.3f} "
            f"| {worst:.3f}{verdict} | {'; '.join(self.bad[:3]) or '-'} |"
        )


def _timed(series: Series, send: Callable[[], httpx.Response]) -> None:
    started = time.perf_counter()
    try:
        status = str(send().status_code)
    except httpx.HTTPError as exc:
        status = type(exc).__name__
    series.seconds.append(time.perf_counter() - started)
    if status != "200":
        series.bad.append(status)


def _probe(
    url: str, every: float, stop: threading.Event, series: Series, body: Body | None
) -> None:
    """GET /health, or POST /predict with `body`, every `every` seconds until stopped."""
    with httpx.Client(base_url=url, timeout=60.0) as client:

        def send() -> httpx.Response:
            if body is None:
                return client.get("/health")
            headers = {"content-type": body.content_type}
            return client.post("/predict", content=body.data, headers=headers)

        while not stop.is_set():
            _timed(series, send)
            stop.wait(every)


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _sample_rss(pid: int, stop: threading.Event, peak: list[int]) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], _rss(pid))
        stop.wait(0.05)


def _attack(url: str, attack: Attack, rounds: int, series: Series, codes: list[int]) -> None:
    headers = {"content-type": attack.body.content_type}
    with httpx.Client(base_url=url, timeout=120.0) as client:
        for _ in range(rounds):
            started = time.perf_counter()
            response = client.post(attack.path, content=attack.body.data, headers=headers)
            series.seconds.append(time.perf_counter() - started)
            codes.append(response.status_code)


@dataclass
class Result:
    health: Series
    predict: Series
    attacks: dict[str, tuple[Series, list[int]]]
    rss_idle: int
    rss_peak: int
    load: tuple[float, float]  # the machine's 1-minute load average before and after

    @property
    def passed(self) -> bool:
        return (
            bool(self.health.seconds)
            and max(self.health.seconds) <= HEALTH_TARGET_S
            and bool(self.predict.seconds)
            and max(self.predict.seconds) <= PREDICT_TARGET_S
            and not self.health.bad
            and not self.predict.bad
            and self.rss_peak < RSS_TARGET_BYTES
        )

    def report(self) -> str:
        lines = [
            "| while the attacks run | requests | median s | max s | not 200 |",
            "| --- | --- | --- | --- | --- |",
            self.health.row("GET /health", HEALTH_TARGET_S),
            self.predict.row("POST /predict, one JPEG", PREDICT_TARGET_S),
            "",
            "| attack | requests | median s | max s | statuses |",
            "| --- | --- | --- | --- | --- |",
        ]
        for name, (series, codes) in self.attacks.items():
            statuses = ", ".join(sorted({str(c) for c in codes}))
            lines.append(
                f"| {name} | {len(series.seconds)} | {statistics.median(series.seconds):.3f} "
                f"| {max(series.seconds):.3f} | {statuses} |"
            )
        mib = 1024 * 1024
        lines += [
            "",
            f"Resident memory: {self.rss_idle / mib:.0f} MiB idle, peak {self.rss_peak / mib:.0f} "
            f"MiB (target under {RSS_TARGET_BYTES / mib:.0f} MiB).",
            f"Load average (1 min): {self.load[0]:.1f} before, {self.load[1]:.1f} after, on "
            f"{os.cpu_count()} CPUs.",
            f"Verdict: {'all targets met' if self.passed else 'a target was missed'}.",
        ]
        return "\n".join(lines)


def run(url: str, pid: int, rounds: int = 3, only: str = "") -> Result:
    """Run the attacks (those whose name holds `only`) against a served app (whose process is
    `pid`) and measure the others."""
    pictures, _ = cifar_jpegs(1)
    one_jpeg = multipart_body(pictures)
    rss_idle = _rss(pid)
    load_before = os.getloadavg()[0]
    stop = threading.Event()
    health, predict, peak = Series(), Series(), [rss_idle]
    probes = [
        threading.Thread(target=_probe, args=(url, 0.1, stop, health, None)),
        threading.Thread(target=_probe, args=(url, 0.25, stop, predict, one_jpeg)),
        threading.Thread(target=_sample_rss, args=(pid, stop, peak)),
    ]
    results: dict[str, tuple[Series, list[int]]] = {}
    threads = []
    for attack in (a for a in attacks() if only in a.name):
        results[attack.name] = (Series(), [])
        args = (url, attack, rounds, *results[attack.name])
        threads.append(threading.Thread(target=_attack, args=args))
    for thread in probes + threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    for thread in probes:
        thread.join()
    return Result(health, predict, results, rss_idle, peak[0], (load_before, os.getloadavg()[0]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="times each attack is sent")
    parser.add_argument("--out", type=Path, help="also write the report here")
    parser.add_argument("--only", default="", help="only the attacks whose name holds this")
    args = parser.parse_args(argv)
    with Server("app.main:app", env={"APP_DEVICE": "cpu"}) as server:
        assert server.process is not None
        result = run(server.url, server.process.pid, args.rounds, args.only)
    report = result.report()
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report + "\n")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
