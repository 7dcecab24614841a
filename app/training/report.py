"""A training report: one HTML file that opens offline, with the model card's three figures and
the recipe, timing and accuracy of a run as tables.

`python -m app.train` writes it beside the weights (cifar_net.pth -> cifar_net.html); for metrics
already written, `python -m app.training.report app/weights/cifar_net.json` writes it beside them.

plotly.js comes from the plotly package (`plotly.offline.get_plotlyjs()`, about 4.8 MB) and is
embedded whole, so the file needs no network: nothing in it refers to another host except strings
inside plotly.js that only map traces and the Chart Studio button read, and the report has neither.
Each figure travels as JSON in a `<script type="application/json">`, the way the pages embed them.
"""

import argparse
import html
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from app.training import figures

Metrics = Mapping[str, Any]

# (element id, heading, figure function); a figure whose data the metrics lack is left out.
FIGURES: list[tuple[str, str, Callable[[Metrics], go.Figure]]] = [
    ("per-class", "Test accuracy per class", figures.per_class_accuracy),
    ("curves", "Training curves", figures.training_curves),
    (
        "confusion",
        "Confusion matrix (rows: true class, columns: predicted class)",
        figures.confusion_matrix,
    ),
]

# Table sections: (heading, [(metrics key, label)]); keys a run did not record are skipped.
SECTIONS: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "Accuracy",
        [
            ("test_accuracy", "Test accuracy"),
            ("train_images", "Training pictures"),
            ("test_images", "Test pictures"),
            ("parameter_count", "Parameters"),
        ],
    ),
    (
        "Recipe",
        [
            ("recipe", "Recipe"),
            ("epochs", "Epochs"),
            ("batch_size", "Batch size"),
            ("lr", "Peak learning rate"),
            ("schedule", "Optimiser and schedule"),
            ("augmentation", "Augmentation"),
            ("seed", "Random seed"),
        ],
    ),
    (
        "Timing",
        [
            ("data_load_s", "Reading the data (s)"),
            ("train_time_s", "Training (s)"),
            ("wall_time_s", "Whole run (s)"),
            ("device", "Device"),
            ("torch_threads", "Torch threads"),
            ("machine", "Machine"),
            ("torch_version", "PyTorch"),
            ("python_version", "Python"),
        ],
    ),
    (
        "Provenance",
        [
            ("data", "Data"),
            ("data_layout", "Data layout"),
            ("data_sha256", "Data SHA-256"),
            ("data_limit_per_class", "Images per class (limit)"),
            ("weights_file", "Weights"),
            ("weights_sha256", "Weights SHA-256"),
            ("command", "Command"),
            ("finished_at", "Finished at"),
        ],
    ),
]

STYLE = """
body { font-family: system-ui, sans-serif; color: #14213d; max-width: 72rem; margin: 2rem auto;
       padding: 0 1rem; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; }
.lead { color: #4a5261; margin-top: 0; }
.tables { display: grid; grid-template-columns: repeat(auto-fit, minmax(22rem, 1fr)); gap: 1rem;
          align-items: start; }
table { border-collapse: collapse; width: 100%; }
caption { text-align: left; font-weight: 700; padding: 0.3rem 0; }
th, td { border-top: 1px solid #e3e7ee; padding: 0.25rem 0.5rem; text-align: left;
         vertical-align: top; }
th { font-weight: 400; color: #4a5261; width: 40%; }
td { font-family: ui-monospace, monospace; overflow-wrap: anywhere; }
section { margin-top: 1.5rem; }
"""

# Draws every embedded figure; the only script besides plotly.js.
DRAW = """
for (const data of document.querySelectorAll('script[type="application/json"][data-figure]')) {
  const fig = JSON.parse(data.textContent);
  const div = document.getElementById(data.dataset.figure);
  Plotly.newPlot(div, fig.data, fig.layout, { displaylogo: false, responsive: true });
}
"""


def report_path(path: Path) -> Path:
    """cifar_net.pth or cifar_net.json -> cifar_net.html."""
    return Path(path).with_suffix(".html")


def _value(key: str, value: Any) -> str:
    if key == "test_accuracy" and isinstance(value, float):
        return f"{value:.2%}"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return f"{value:,}"
    return str(value)


def _table(caption: str, rows: Sequence[tuple[str, str]]) -> str:
    body = "".join(
        f"<tr><th scope=row>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
        for label, value in rows
    )
    return f"<table><caption>{html.escape(caption)}</caption>{body}</table>"


def tables(metrics: Metrics) -> list[str]:
    """The sections above (the recipe with every setting of the run's config) and the epoch
    times summed up."""
    config = metrics.get("config")
    settings = [
        (k, _value(k, v))
        for k, v in (config.items() if isinstance(config, Mapping) else ())
        if k not in metrics  # shown under its own label already
    ]
    out = []
    for caption, fields in SECTIONS:
        rows = [(label, _value(k, metrics[k])) for k, label in fields if k in metrics]
        rows += settings if caption == "Recipe" else []
        if rows:
            out.append(_table(caption, rows))
    times = (metrics.get("history") or {}).get("epoch_time_s") or []
    if times:
        rows = [
            ("Epochs timed", _value("", len(times))),
            ("Mean epoch (s)", f"{sum(times) / len(times):.2f}"),
            ("Slowest epoch (s)", f"{max(times):.2f}"),
        ]
        out.append(_table("Epoch times", rows))
    return out


def _script_json(fig: go.Figure) -> str:
    """The figure as JSON that cannot close its <script> element (`<` written as \\u003c)."""
    return fig.to_json().replace("<", "\\u003c")


def render_report(metrics: Metrics) -> str:
    """The whole report as one HTML string."""
    name = str(metrics.get("weights_file") or "weights")
    parts = []
    for element, heading, build in FIGURES:
        try:
            fig = build(metrics)
        except (KeyError, ValueError):  # a run that did not record this figure's data
            continue
        parts.append(
            f'<section><h2>{html.escape(heading)}</h2><div id="{element}"></div>'
            f'<script type="application/json" data-figure="{element}">{_script_json(fig)}'
            "</script></section>"
        )
    accuracy = metrics.get("test_accuracy")
    lead = f"Test accuracy {accuracy:.2%}" if isinstance(accuracy, float) else "No test accuracy"
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Training report: {html.escape(name)}</title><style>{STYLE}</style>"
        f"<script>{get_plotlyjs()}</script></head>\n<body>"
        f"<h1>Training report: {html.escape(name)}</h1>"
        f'<p class="lead">{html.escape(lead)}, the CIFAR-10 tutorial\'s Net.</p>'
        f'<div class="tables">{"".join(tables(metrics))}</div>'
        f"{''.join(parts)}<script>{DRAW}</script></body></html>\n"
    )


def write_report(metrics: Metrics, path: Path) -> Path:
    """Write the report for these metrics to PATH; return PATH."""
    path = Path(path)
    path.write_text(render_report(metrics), encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.training.report",
        description="Write the HTML training report for a metrics JSON, without retraining.",
    )
    parser.add_argument("metrics", type=Path, help="the JSON beside the weights")
    parser.add_argument("--out", type=Path, help="default: the metrics path with .html")
    args = parser.parse_args(argv)
    try:
        metrics = json.loads(args.metrics.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"error: cannot read {args.metrics}: {exc}", file=sys.stderr)
        return 2
    out = write_report(metrics, args.out or report_path(args.metrics))
    print(f"wrote {out} ({out.stat().st_size:,} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
