"""The model card's three figures, built with plotly.graph_objects from a training metrics dict.

The metrics are the JSON that `python -m app.train` writes beside the weights
(app/weights/cifar_net.json). The /model page embeds each figure's `fig.to_json()` and plotly.js
draws it; the training report (app/training/report.py) draws the same figures offline.

Every string a figure shows comes from `text`, a mapping laid over the English `FIGURE_TEXT`, so a
page can pass its own language; class names are looked up as `class.<name>` and fall back to the
name itself. The figures carry no titles of their own: the page and the report head each with
their own heading.

The look follows the pages' charts: colours from static/css/app.css (`--c-softmax` for accuracy,
`--c-nll` for loss), the same fonts, a transparent background, and an empty template, so that the
JSON holds only what is drawn (plotly.py's default template alone is about 6.5 kB).
"""

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from app.model import CLASSES

Metrics = Mapping[str, Any]

FIGURE_TEXT: dict[str, str] = {
    "accuracy": "accuracy",
    "chance": "chance (10%)",
    "true_class": "true class",
    "pred_class": "predicted class",
    "count": "test images",
    "epoch": "epoch",
    "loss": "loss (cross-entropy)",
    "train_loss": "training loss",
    "train_acc": "training accuracy",
    "test_acc": "test accuracy",
    **{f"class.{name}": name for name in CLASSES},
}

# The palette and fonts of static/css/app.css (--c-softmax, --c-nll, --sans, --mono, --ink).
ACCURACY_COLOR = "#23783a"
LOSS_COLOR = "#b42318"
INK = "#14213d"
GRID = "#e3e7ee"
MUTED = "#8c95a8"
SANS = (
    'system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Noto Sans CJK SC", '
    '"PingFang SC", "Microsoft YaHei", "Helvetica Neue", Arial, sans-serif'
)
MONO = (
    'ui-monospace, "SFMono-Regular", "Cascadia Mono", Menlo, Consolas, "DejaVu Sans Mono", '
    '"Liberation Mono", "Noto Sans Mono CJK SC", monospace'
)
# One hue from near white to dark blue: its order survives every kind of colour blindness and
# greyscale printing. The bend at 15% spreads the many small off-diagonal counts.
CONFUSION_SCALE = [[0.0, "#f5f7fb"], [0.15, "#b9c7ee"], [1.0, "#1d3a8a"]]


def _labels(text: Mapping[str, str] | None) -> dict[str, str]:
    return {**FIGURE_TEXT, **(text or {})}


def _class_names(names: Sequence[str], labels: Mapping[str, str]) -> list[str]:
    return [labels.get(f"class.{name}", name) for name in names]


def _figure(data: list[Any], **layout: Any) -> go.Figure:
    """The pages' base layout (static/js/common.js baseLayout) under this figure's own."""
    base: dict[str, Any] = {
        "template": go.layout.Template(),
        "margin": {"l": 56, "r": 16, "t": 12, "b": 40},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"family": SANS, "size": 14, "color": INK},
        "showlegend": False,
        "hoverlabel": {"font": {"family": MONO}},
    }
    axis = {"gridcolor": GRID, "zerolinecolor": MUTED, "automargin": True}
    fig = go.Figure(data=data, layout=base)
    fig.update_xaxes(**axis, tickfont={"family": MONO})
    fig.update_yaxes(**axis)
    fig.update_layout(**layout)
    return fig


def per_class_accuracy(metrics: Metrics, text: Mapping[str, str] | None = None) -> go.Figure:
    """Horizontal bars, one per class, with a dotted line at chance (1 in 10)."""
    labels = _labels(text)
    per_class: Mapping[str, float] = metrics["per_class_accuracy"]
    names, accuracy = list(per_class), list(per_class.values())
    chance = 1 / len(names)
    bars = go.Bar(
        orientation="h",
        y=_class_names(names, labels),
        x=accuracy,
        marker={"color": ACCURACY_COLOR},
        text=[f"{a:.1%}" for a in accuracy],
        textposition="outside",
        cliponaxis=False,
        textfont={"family": MONO, "size": 12},
        hovertemplate="%{y}: %{x:.3f}<extra></extra>",
    )
    return _figure(
        [bars],
        height=380,
        bargap=0.25,
        margin={"l": 10, "r": 60, "t": 8, "b": 40},
        yaxis={"autorange": "reversed", "type": "category", "tickfont": {"family": SANS}},
        xaxis={
            "range": [0, 1.12],
            "tickformat": ".0%",
            "title": {"text": f"{labels['accuracy']} · ┊ {labels['chance']}"},
        },
        shapes=[
            {
                "type": "line",
                "yref": "paper",
                "y0": 0,
                "y1": 1,
                "x0": chance,
                "x1": chance,
                "line": {"color": MUTED, "dash": "dot", "width": 2},
            }
        ],
    )


def confusion_matrix(metrics: Metrics, text: Mapping[str, str] | None = None) -> go.Figure:
    """Counts of test images by true class (rows) and predicted class (columns)."""
    labels = _labels(text)
    counts: list[list[int]] = metrics["confusion_matrix"]
    names = _class_names(metrics.get("classes") or list(metrics["per_class_accuracy"]), labels)
    cells = go.Heatmap(
        z=counts,
        x=names,
        y=names,
        colorscale=CONFUSION_SCALE,
        texttemplate="%{z}",
        textfont={"family": MONO, "size": 12},
        showscale=False,
        xgap=1,
        ygap=1,
        hovertemplate=(
            f"{labels['true_class']}: %{{y}}<br>{labels['pred_class']}: %{{x}}<br>"
            f"{labels['count']}: %{{z}}<extra></extra>"
        ),
    )
    category = {"type": "category", "tickfont": {"family": SANS}}
    return _figure(
        [cells],
        height=560,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis={"title": {"text": labels["pred_class"]}, "side": "top", "tickangle": -35} | category,
        yaxis={"title": {"text": labels["true_class"]}, "autorange": "reversed"} | category,
    )


def history(metrics: Metrics) -> dict[str, list[float | None]] | None:
    """Per-epoch series: today's `history` dict, or a list of per-epoch records; None without."""
    keys = ("train_loss", "train_accuracy", "test_accuracy")
    kept = metrics.get("history")
    if isinstance(kept, Mapping) and kept.get("train_loss"):
        return {k: list(kept.get(k) or []) for k in keys}
    epochs = metrics.get("epochs")
    if isinstance(epochs, list) and epochs:
        return {k: [e.get(k) if isinstance(e, Mapping) else None for e in epochs] for k in keys}
    return None


def training_curves(metrics: Metrics, text: Mapping[str, str] | None = None) -> go.Figure:
    """Training loss on the left axis; training and test accuracy on the right one, per epoch.

    Loss and accuracy differ in colour, marker and side, so that they read apart without colour.
    """
    labels = _labels(text)
    series = history(metrics)
    if series is None:
        raise ValueError("these metrics have no per-epoch history")
    epoch = list(range(1, len(series["train_loss"]) + 1))
    # series, its label, axis, colour, line width and dash, marker, hover format
    curves = [
        ("train_loss", "train_loss", "y", LOSS_COLOR, 3, "solid", "circle", "%{y:.4f}"),
        ("test_accuracy", "test_acc", "y2", ACCURACY_COLOR, 3, "solid", "diamond", "%{y:.2%}"),
        ("train_accuracy", "train_acc", "y2", ACCURACY_COLOR, 2, "dot", None, "%{y:.2%}"),
    ]
    traces = [
        go.Scatter(
            x=epoch,
            y=series[key],
            name=labels[label],
            yaxis=axis,
            mode="lines+markers" if marker else "lines",
            line={"color": color, "width": width, "dash": dash},
            marker={"symbol": marker, "size": 7} if marker else None,
            hovertemplate=hover,
        )
        for key, label, axis, color, width, dash, marker, hover in curves
        if any(v is not None for v in series[key])
    ]
    return _figure(
        traces,
        height=380,
        showlegend=True,
        legend={"orientation": "h", "y": 1.14, "x": 0},
        hovermode="x unified",
        margin={"t": 40, "r": 60},
        xaxis={"title": {"text": labels["epoch"]}, "nticks": 12},
        yaxis={
            "title": {"text": labels["loss"], "font": {"color": LOSS_COLOR}},
            "rangemode": "tozero",
        },
        yaxis2={
            "title": {"text": labels["accuracy"], "font": {"color": ACCURACY_COLOR}},
            "overlaying": "y",
            "side": "right",
            "tickformat": ".0%",
            "range": [0, 1],
            "tickmode": "linear",  # not synced to the loss axis's ticks (0%, 22%, 44%, ...)
            "dtick": 0.2,
            "showgrid": False,
            "automargin": True,
        },
    )
