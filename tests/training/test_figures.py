"""The model card's figures and the training report, checked against the metrics they draw.

The reference is the metrics JSON itself (the shipped one, and one the trainer writes in the
test): every number a figure carries must be the JSON's number in the JSON's order.
"""

import itertools
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from app.model import CLASSES
from app.training import figures
from app.training.cli import main as train_main
from app.training.report import main as report_main
from app.training.report import report_path, write_report
from tests.training.test_data import make_folder

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = json.loads((ROOT / "app" / "weights" / "cifar_net.json").read_text())
BUILDERS = [figures.per_class_accuracy, figures.confusion_matrix, figures.training_curves]


def strings(node: Any) -> list[str]:
    """Every string value in a figure's JSON, at any depth."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in strings(v)]
    return []


def shown(fig: Any) -> list[str]:
    return strings(json.loads(fig.to_json()))


def test_per_class_accuracy_draws_the_metrics() -> None:
    fig = figures.per_class_accuracy(SHIPPED)
    (bars,) = fig.data
    assert list(bars.y) == list(SHIPPED["per_class_accuracy"])
    assert list(bars.x) == list(SHIPPED["per_class_accuracy"].values())
    assert list(bars.text) == [f"{100 * a:.1f}%" for a in SHIPPED["per_class_accuracy"].values()]
    (chance,) = fig.layout.shapes
    assert chance.x0 == chance.x1 == pytest.approx(1 / len(CLASSES))


def test_confusion_matrix_draws_the_metrics() -> None:
    (cells,) = figures.confusion_matrix(SHIPPED).data
    assert [list(row) for row in cells.z] == SHIPPED["confusion_matrix"]
    assert list(cells.x) == list(cells.y) == SHIPPED["classes"]


def luminance(hex_color: str) -> float:
    """WCAG relative luminance."""
    channels = [int(hex_color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_confusion_scale_reads_without_colour() -> None:
    """One hue, darker with every stop: the order survives colour blindness and greyscale."""
    (cells,) = figures.confusion_matrix(SHIPPED).data
    stops = [luminance(color) for _, color in cells.colorscale]
    assert all(a > b for a, b in itertools.pairwise(stops))
    assert stops[0] / stops[-1] > 10


def test_training_curves_put_loss_and_accuracy_on_their_own_axes() -> None:
    fig = figures.training_curves(SHIPPED)
    by_name = {trace.name: trace for trace in fig.data}
    history = SHIPPED["history"]
    epochs = list(range(1, len(history["train_loss"]) + 1))
    loss = by_name[figures.FIGURE_TEXT["train_loss"]]
    test = by_name[figures.FIGURE_TEXT["test_acc"]]
    train = by_name[figures.FIGURE_TEXT["train_acc"]]
    assert list(loss.y) == history["train_loss"] and loss.yaxis in (None, "y")
    assert list(test.y) == history["test_accuracy"] and test.yaxis == "y2"
    assert list(train.y) == history["train_accuracy"] and train.yaxis == "y2"
    assert list(loss.x) == list(test.x) == list(train.x) == epochs
    # Each axis is titled for what it carries, not after one of the traces on it.
    left, right = fig.layout.yaxis.title.text, fig.layout.yaxis2.title.text
    assert left == figures.FIGURE_TEXT["loss"] and right == figures.FIGURE_TEXT["accuracy"]
    assert {left, right}.isdisjoint(by_name)


def test_training_curves_read_per_epoch_records_and_refuse_no_history() -> None:
    records = [
        {"train_loss": 2.0, "train_accuracy": 0.2, "test_accuracy": 0.3},
        {"train_loss": 1.5, "train_accuracy": 0.4, "test_accuracy": 0.45},
    ]
    fig = figures.training_curves({"epochs": records})
    assert [list(t.y) for t in fig.data] == [[2.0, 1.5], [0.3, 0.45], [0.2, 0.4]]
    with pytest.raises(ValueError, match="history"):
        figures.training_curves({"epochs": 40, "test_accuracy": 0.7})


@pytest.mark.parametrize("build", BUILDERS, ids=lambda b: b.__name__)
def test_every_label_comes_from_text(build: Any) -> None:
    """With every key translated, no English label is left in the figure."""
    text = {key: f"«{i}»" for i, key in enumerate(figures.FIGURE_TEXT)}
    english = [re.compile(rf"\b{re.escape(v)}\b") for v in figures.FIGURE_TEXT.values()]
    default, translated = shown(build(SHIPPED)), shown(build(SHIPPED, text))
    assert any(p.search(s) for p in english for s in default)  # the check can see English
    left = [s for s in translated if any(p.search(s) for p in english)]
    assert left == []
    assert any("«" in s for s in translated)


@pytest.mark.parametrize("build", BUILDERS, ids=lambda b: b.__name__)
def test_figures_are_small_data_without_plotly_js(build: Any) -> None:
    fig = json.loads(build(SHIPPED).to_json())
    assert set(fig) == {"data", "layout"}
    assert len(json.dumps(fig)) < 10_000
    assert len(json.dumps(fig["layout"]["template"])) < 100  # plotly.py's default one: 6.5 kB


class Report(HTMLParser):
    """The figures' JSON, every URL-bearing attribute, and the scripts of a report."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.figures: dict[str, Any] = {}
        self.urls: list[str] = []
        self.script_srcs: list[str] = []
        self.styles: list[str] = []
        self.cells: list[str] = []
        self._in: tuple[str, dict[str, str | None]] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        urls = ("src", "href", "srcset", "poster", "data", "action", "formaction", "xlink:href")
        self.urls += [str(named[key]) for key in urls if named.get(key)]
        if tag == "script" and named.get("src"):
            self.script_srcs.append(str(named["src"]))
        self._in = (tag, named)

    def handle_data(self, data: str) -> None:
        if self._in is None:
            return
        tag, named = self._in
        if tag == "script" and named.get("type") == "application/json":
            self.figures[str(named["data-figure"])] = json.loads(data)
        elif tag == "style":
            self.styles.append(data)
        elif tag == "td":
            self.cells.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in = None


def check_report(html: str, metrics: dict[str, Any]) -> Report:
    """The three figures carry the metrics' numbers; nothing asks another host for anything."""
    report = Report(html)
    assert set(report.figures) == {"per-class", "confusion", "curves"}
    bars = report.figures["per-class"]["data"][0]
    assert bars["x"] == list(metrics["per_class_accuracy"].values())
    assert report.figures["confusion"]["data"][0]["z"] == metrics["confusion_matrix"]
    curves = {t["name"]: t["y"] for t in report.figures["curves"]["data"]}
    assert curves[figures.FIGURE_TEXT["train_loss"]] == metrics["history"]["train_loss"]
    assert curves[figures.FIGURE_TEXT["test_acc"]] == metrics["history"]["test_accuracy"]
    assert f"{metrics['test_accuracy']:.2%}" in report.cells
    assert metrics["weights_sha256"] in report.cells
    # No element loads anything: plotly.js and the figures are inline, and no URL is remote.
    assert report.script_srcs == []
    assert not [u for u in report.urls if re.match(r"\s*(https?:)?//", u, re.I)]
    assert not [s for s in report.styles if re.search(r"url\(|@import", s, re.I)]
    return report


def test_report_of_the_shipped_metrics(tmp_path: Path) -> None:
    out = write_report(SHIPPED, tmp_path / "cifar_net.html")
    check_report(out.read_text(encoding="utf-8"), SHIPPED)
    assert report_path(Path("w/cifar_net.pth")) == Path("w/cifar_net.html")


def test_report_command_writes_beside_the_metrics(tmp_path: Path) -> None:
    metrics = tmp_path / "cifar_net.json"
    metrics.write_text(json.dumps(SHIPPED))
    assert report_main([str(metrics)]) == 0
    check_report((tmp_path / "cifar_net.html").read_text(encoding="utf-8"), SHIPPED)
    assert report_main([str(tmp_path / "missing.json")]) == 2


def test_trainer_writes_the_report_beside_the_weights(tmp_path: Path) -> None:
    data = make_folder(tmp_path / "cifar10", train=2, test=1)
    out = tmp_path / "weights" / "cifar_net.pth"
    argv = ["--data", str(data), "--out", str(out), "--epochs", "2", "--batch-size", "8"]
    assert train_main([*argv, "--quiet", "--device", "cpu"]) == 0
    metrics = json.loads(out.with_suffix(".json").read_text())
    check_report(out.with_suffix(".html").read_text(encoding="utf-8"), metrics)
