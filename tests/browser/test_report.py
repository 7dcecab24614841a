"""The training report opened from disk in headless chromium: three plots drawn from the
metrics, no console errors, and no request for anything but the file itself."""

import json
from pathlib import Path
from typing import Any

import pytest

from app.training.report import write_report

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
METRICS = json.loads((ROOT / "app" / "weights" / "cifar_net.json").read_text())


def test_report_draws_offline(browser: Any, tmp_path: Path) -> None:
    report = write_report(METRICS, tmp_path / "cifar_net.html")
    url = report.as_uri()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    errors: list[str] = []
    context.route("**/*", lambda r: r.continue_() if r.request.url == url else r.abort())
    page = context.new_page()
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    try:
        page.goto(url)
        page.wait_for_function(
            "() => ['#per-class .bars .point', '#confusion .hm', '#curves .scatterlayer .trace']"
            ".every(s => document.querySelector(s))",
            timeout=20_000,
        )
        drawn = page.evaluate(
            """() => ({
              bars: document.querySelectorAll('#per-class .bars .point').length,
              z: document.getElementById('confusion')._fullData[0].z,
              heat: document.querySelectorAll('#confusion .hm').length,
              lines: document.querySelectorAll('#curves .scatterlayer .trace').length,
              loss: document.getElementById('curves')._fullData[0].y,
            })"""
        )
    finally:
        context.close()
    assert errors == []
    assert requests == [url]
    assert drawn["bars"] == len(METRICS["per_class_accuracy"])
    assert drawn["z"] == METRICS["confusion_matrix"] and drawn["heat"] == 1
    assert drawn["lines"] == 3 and drawn["loss"] == METRICS["history"]["train_loss"]
