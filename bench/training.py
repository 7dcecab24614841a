"""Time to accuracy, read from the metrics JSON that app.train writes beside the weights.

Nothing is trained here: the shipped weights' metrics (app/weights/cifar_net.json) and, where
the training runs left one, the metrics of the tutorial's own loop (a JSON under app/weights/ or
bench/ whose "recipe" is "tutorial") are read and compared.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "app" / "weights" / "cifar_net.json"
TARGET_ACCURACY = 0.72


@dataclass(frozen=True)
class Run:
    source: str  # the JSON it came from, relative to the repository
    recipe: str
    epochs: int
    batch_size: int | None
    accuracy: float  # final test accuracy
    wall_s: float | None  # data loading + training + evaluation
    train_s: float | None
    seconds_to_target: float | None  # data loading + epochs until test accuracy >= TARGET
    torch_threads: int | None


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "test_accuracy" in data else None


def _run(path: Path, data: dict[str, Any]) -> Run:
    history = data.get("history") or {}
    accuracies = history.get("test_accuracy") or []
    epoch_times = history.get("epoch_time_s") or []
    to_target: float | None = None
    elapsed = float(data.get("data_load_s") or 0.0)
    for accuracy, seconds in zip(accuracies, epoch_times, strict=False):
        elapsed += float(seconds)
        if accuracy >= TARGET_ACCURACY:
            to_target = elapsed
            break
    return Run(
        source=str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path),
        recipe=str(data.get("recipe", "?")),
        epochs=int(data.get("epochs") or len(accuracies)),
        batch_size=data.get("batch_size"),
        accuracy=float(data["test_accuracy"]),
        wall_s=data.get("wall_time_s"),
        train_s=data.get("train_time_s"),
        seconds_to_target=to_target,
        torch_threads=data.get("torch_threads"),
    )


def shipped(path: Path = SHIPPED) -> Run | None:
    data = _read(path)
    return None if data is None else _run(path, data)


def tutorial(folders: tuple[Path, ...] = (SHIPPED.parent, ROOT / "bench")) -> Run | None:
    """The metrics of a run of the tutorial's loop (batch 4, 2 epochs), if one was recorded."""
    for folder in folders:
        for path in sorted(folder.rglob("*.json")) if folder.is_dir() else []:
            data = _read(path)
            if data is not None and data.get("recipe") == "tutorial":
                return _run(path, data)
    return None
