"""How fast the instrument on / and /sandbox follows an input, in headless chromium at 1280 px.

    python -m bench.explainer [--edits 40] [--baseline DIR]

For each edit of a logit the page records the time from the input event to the end of the
next frame after every stage, the loss, the table and each chart on screen were redrawn
(data-latency-ms on the loss), computed by the JavaScript engine; PyTorch's check on the server
comes after (its time is reported too). Measured with the page scrolled to the top of the
instrument (the table), to the stage cards (their charts) and to the gradient, on /, and on
/sandbox. Then it scrolls through the whole page and checks that every chart drawn while off
screen shows the latest state by the time it is on screen. Last, the cost of one stage-card bar
chart: plotly.js (Plotly.react) against the SVG of static/js/charts.js, in the same page.

--baseline DIR serves the app from another checkout (e.g. a worktree of the commit before the
instrument) and measures its /sandbox the way bench.sandbox did: from the input event to the
stages redrawn from the answer of POST /loss. This is a measurement, not a test.
"""

import argparse
import os
import shutil
import statistics
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright

from bench.server import Server

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
LOSS = '[data-testid="loss-value"]'
LOGIT = 'input[data-testid="logit"]'
BUDGET_MS = 33.0  # two frames at 60 Hz
DRAWN = "(v) => document.querySelector('[data-testid=loss-value]').dataset.version === String(v)"
AGREED = "() => document.querySelector('#verdict').dataset.verdict === 'agrees'"
# the charts whose top is within the viewport
ON_SCREEN = """() => [...document.querySelectorAll('[data-chart]')].filter(d => {
  const r = d.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight; }).length"""


def edits(page: Page, count: int, nth: int) -> dict[str, Any]:
    """Type `count` values into logit `nth`, one at a time, each once the previous is drawn and
    checked by PyTorch; the page's own latency for each, and when PyTorch's check arrived."""
    latencies, checks, work = [], [], []
    for k in range(count):
        before = int(page.get_attribute(LOSS, "data-version") or "0")
        started = page.evaluate("performance.now()")
        page.fill(f"{LOGIT} >> nth={nth}", f"{(k % 9) * 0.61 - 2:.2f}")
        page.wait_for_function(DRAWN, arg=before + 1)
        latencies.append(float(page.get_attribute(LOSS, "data-latency-ms") or "nan"))
        work.append(float(page.get_attribute(LOSS, "data-draw-ms") or "nan"))
        page.wait_for_function(AGREED)
        checks.append(page.evaluate("performance.now()") - started)
    return {"latencies": latencies, "checks": checks, "work": work}


def scroll_to(page: Page, selector: str) -> None:
    page.evaluate(f"document.querySelector({selector!r}).scrollIntoView({{block: 'start'}})")
    page.wait_for_timeout(300)  # the IntersectionObserver reports the new position


SEEN_STALE = """(v) => [...document.querySelectorAll('[data-chart]')].filter(d => {
  const r = d.getBoundingClientRect();
  return r.bottom > 0 && r.top < innerHeight && d.dataset.version !== v; }).length"""
NEXT_FRAME = "() => new Promise((done) => requestAnimationFrame(() => done(null)))"


def stale_after_scrolling(page: Page) -> tuple[int, int, int]:
    """Scroll the page from the top to the bottom with the mouse wheel, 400 px at a time, as a
    reader would: (charts, how many were stale when the scrolling began, how many times a chart
    on screen showed an older state than the latest)."""
    latest = page.get_attribute("html", "data-draw-version")
    total = page.locator("[data-chart]").count()
    stale = "(v) => [...document.querySelectorAll('[data-chart]')]"
    stale += ".filter(d => d.dataset.version !== v).length"
    before = page.evaluate(stale, latest)
    page.evaluate("window.scrollTo(0, 0)")
    seen = 0
    height = page.evaluate("document.documentElement.scrollHeight")
    for _ in range(height // 400 + 1):
        page.mouse.wheel(0, 400)
        page.evaluate(NEXT_FRAME)
        page.evaluate(NEXT_FRAME)
        seen += page.evaluate(SEEN_STALE, latest)
    return total, before, seen


PLOTLY_BARS = """async () => {
  // one stage-card chart, drawn as plotly.js draws it and as static/js/charts.js draws it
  await new Promise((done) => {
    const s = document.createElement('script');
    s.src = '/static/vendor/plotly/plotly-cartesian.min.js';
    s.onload = done;
    document.head.append(s);
  });
  const { hbars } = await import('/static/js/charts.js');
  const labels = ['0 airplane', '1 automobile', '2 bird', '3 cat', '4 deer', '5 dog', '6 frog',
    '7 horse', '8 ship', '9 truck'];
  const box = document.querySelector('.stage-card .chart');
  const values = (k) => labels.map((_, c) => Math.sin(c + k) * 3);
  const time = (draw) => {
    const out = [];
    for (let k = 0; k < 40; k++) {
      const t = performance.now();
      draw(values(k));
      box.getBoundingClientRect(); // style and layout, as the frame will need them
      out.push(performance.now() - t);
    }
    return out.slice(5);
  };
  const plotly = document.createElement('div');
  box.replaceChildren(plotly);
  const figure = (v) => [{type: 'bar', orientation: 'h', y: labels, x: v,
    marker: {color: labels.map((_, c) => (c === 3 ? '#3451b2' : '#3451b299'))},
    text: v.map((x) => x.toFixed(4)), textposition: 'outside', cliponaxis: false}];
  const layout = {height: 320, margin: {l: 10, r: 16, t: 8, b: 36},
    yaxis: {autorange: 'reversed', type: 'category'}, showlegend: false};
  const p = time((v) => window.Plotly.react(plotly, figure(v), layout, {displayModeBar: false}));
  const svg = document.createElement('div');
  box.replaceChildren(svg);
  hbars(svg, {labels, values: values(0), target: 3, color: '#3451b2', title: 'bars', fmt: String});
  await new Promise((done) => setTimeout(done, 200)); // on screen: drawn at once from now on
  const s = time((v) => hbars(svg, {labels, values: v, target: 3, color: '#3451b2', title: 'bars',
    fmt: (x) => x.toFixed(4)}));
  return {plotly: p, svg: s};
}"""


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def report(name: str, result: dict[str, Any], charts: int) -> str:
    lat, checks = result["latencies"], result["checks"]
    within = sum(x <= BUDGET_MS for x in lat)
    return (
        f"| {name} | {charts} | {median(lat):.1f} | {max(lat):.1f} | {within}/{len(lat)} "
        f"| {median(result['work']):.1f} | {median(checks):.0f} |"
    )


def measure(url: str, count: int) -> tuple[list[str], float]:
    """The table of edits, and the target's figure: the slowest median of the three edits on
    / (input event to the loss, the table and every chart on screen redrawn)."""
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("chromium not found (apt-get install chromium)")
    lines = [
        f"Input to next frame, every chart on screen redrawn (budget {BUDGET_MS:.0f} ms), "
        f"{count} edits each; PyTorch's check: input to its ✓ (after a 150 ms pause).",
        "",
        "| page, scrolled to | charts on screen | median ms | max ms | within budget "
        "| of which drawing, median ms | PyTorch's ✓ median ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url + "/")
        page.wait_for_function(AGREED, timeout=30_000)
        medians = []
        for name, selector, nth in (
            ("/, the table", "#instrument", 3),
            ("/, the stage cards", "#stage-5", 3),
            ("/, the gradient and checks", "#checks-h", 5),
        ):
            scroll_to(page, selector)
            charts = page.evaluate(ON_SCREEN)
            result = edits(page, count, nth)
            medians.append(median(result["latencies"]))
            lines.append(report(name, result, charts))
        total, before, seen = stale_after_scrolling(page)
        page.goto(url + "/sandbox")
        page.wait_for_function(AGREED, timeout=30_000)
        scroll_to(page, "#instrument")
        lines.append(report("/sandbox, the table", edits(page, count, 1), page.evaluate(ON_SCREEN)))
        lines += [
            "",
            f"Charts on /: {total}; left for later while off screen: {before}; "
            f"seen stale while scrolling down the page: {seen} times.",
        ]
        page.goto(url + "/")
        page.wait_for_function(AGREED, timeout=30_000)
        scroll_to(page, "#stage-1")
        cost = page.evaluate(PLOTLY_BARS)
        lines.append(
            f"One stage-card bar chart (10 bars), drawn and laid out: plotly.js "
            f"{median(cost['plotly']):.2f} ms, SVG {median(cost['svg']):.2f} ms (median of 35)."
        )
        browser.close()
    return lines, max(medians)


def baseline(directory: Path, count: int) -> str:
    """The old sandbox's edit-to-update time, from another checkout, as bench.sandbox measured
    it (its page recorded it in data-latency-ms once POST /loss had answered)."""
    env = {"PYTHONPATH": str(directory)}
    with Server("app.main:app", env=env, cwd=directory) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server.url + "/sandbox")
        settled = (
            "() => document.querySelector('[data-testid=loss-value]')?.dataset.pending === 'false'"
        )
        page.wait_for_function(settled)
        latencies = []
        for k in range(count):
            page.fill(f"{LOGIT} >> nth=1", f"{k * 0.37 - 2:.2f}")
            page.wait_for_function(settled)
            latencies.append(float(page.get_attribute(LOSS, "data-latency-ms") or "nan"))
        browser.close()
    return (
        f"Baseline, /sandbox of {directory} (every stage from POST /loss): median "
        f"{median(latencies):.1f} ms, max {max(latencies):.1f} ms over {count} edits."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=40)
    parser.add_argument("--baseline", type=Path, help="another checkout whose /sandbox to time")
    args = parser.parse_args()
    print(f"Machine: {os.cpu_count()} CPUs; headless chromium, 1280 x 900.")
    with Server("app.main:app") as server:
        lines, _ = measure(server.url, args.edits)
    if args.baseline:
        lines += ["", baseline(args.baseline.resolve(), args.edits)]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
