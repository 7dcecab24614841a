"""The sandbox's edit-to-update latency in headless chromium: from an edit of a logit to every
stage, the loss and both charts redrawn from the answer of POST /loss (budget: 150 ms).

    python -m bench.sandbox [--edits 30]

The page measures itself: each update stores its latency in the loss element's
data-latency-ms. This is a measurement, reported beside the benchmarks, not a test.
"""

import argparse
import shutil
import statistics

from playwright.sync_api import sync_playwright

from bench.server import Server

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
LOSS = '[data-testid="loss-value"]'
SETTLED = "() => document.querySelector('[data-testid=loss-value]')?.dataset.pending === 'false'"
BUDGET_MS = 150.0


def measure(url: str, edits: int) -> list[float]:
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("chromium not found (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=FLAGS)
        page = browser.new_page()
        page.goto(url + "/sandbox")
        page.wait_for_function(SETTLED)
        latencies = []
        for k in range(edits):
            page.fill('input[data-testid="logit"] >> nth=1', f"{k * 0.37 - 2:.2f}")
            page.wait_for_function(SETTLED)
            latencies.append(float(page.get_attribute(LOSS, "data-latency-ms") or "nan"))
        browser.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=30)
    args = parser.parse_args()
    with Server("app.main:app") as server:
        latencies = measure(server.url, args.edits)
    median = statistics.median(latencies)
    print(
        f"sandbox edit-to-update latency over {len(latencies)} edits: median {median:.0f} ms, "
        f"max {max(latencies):.0f} ms (budget {BUDGET_MS:.0f} ms: "
        f"{'within' if median <= BUDGET_MS else 'over'})"
    )


if __name__ == "__main__":
    main()
