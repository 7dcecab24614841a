"""`python -m app.train`: train the Net on CIFAR-10 and write its weights, a metrics JSON and an
HTML training report beside them."""

import argparse
import json
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

import torch

from app.model import sha256_file
from app.training.data import load_cifar10
from app.training.loop import RECIPES, TrainConfig, train
from app.training.report import report_path, write_report


def metrics_path(weights: Path) -> Path:
    """cifar_net.pth -> cifar_net.json."""
    return weights.with_suffix(".json")


def run(
    data_path: Path,
    out: Path,
    config: TrainConfig,
    limit: int | None = None,
    workers: int = 2,
    stream: TextIO | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Read the data, train, write OUT (a plain state_dict), its metrics JSON and the report;
    return the metrics."""
    for what, beside in (("metrics", metrics_path(out)), ("report", report_path(out))):
        if str(beside).lower() == str(out).lower():  # one file where case does not count
            raise ValueError(
                f"--out {out} would be overwritten by the {what} written beside the weights "
                f"({beside.name}): name the weights {out.with_suffix('.pth')}"
            )
    started = time.perf_counter()
    data = load_cifar10(data_path, limit=limit, workers=workers)
    load_time = time.perf_counter() - started
    if stream is not None:
        stream.write(
            f"read {len(data.train_labels)} train + {len(data.test_labels)} test images "
            f"from {data.source} ({data.layout}) in {load_time:.1f}s\n"
        )
    net, metrics = train(data, config, stream)
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    torch.save(state, out)
    metrics.update(
        {
            "data": data.source,
            "data_layout": data.layout,
            "data_sha256": data.sha256,
            "data_limit_per_class": limit,
            "data_load_s": round(load_time, 2),
            "wall_time_s": round(time.perf_counter() - started, 2),
            "python_version": platform.python_version(),
            "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
            "weights_file": out.name,
            "weights_sha256": sha256_file(out),
            "command": command,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    )
    metrics_path(out).write_text(json.dumps(metrics, indent=2) + "\n")
    report = write_report(metrics, report_path(out))
    if stream is not None:
        stream.write(
            f"test accuracy {metrics['test_accuracy']:.2%}; wrote {out}, "
            f"{metrics_path(out).name} and {report.name} in {metrics['wall_time_s']:.0f}s\n"
        )
    return metrics


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m app.train",
        description="Train the CIFAR-10 tutorial's Net and write its weights and metrics.",
    )

    def setting(flag: str, text: str = "", **kwargs: Any) -> None:
        """A TrainConfig field as a flag whose help shows both recipes' values."""
        field = flag.removeprefix("--").replace("-", "_")
        ours, theirs = getattr(RECIPES["default"], field), getattr(RECIPES["tutorial"], field)
        note = f"default {ours}" + ("" if ours == theirs else f"; tutorial recipe {theirs}")
        parser.add_argument(flag, help=f"{text} ({note})".lstrip(), **kwargs)

    parser.add_argument("--data", type=Path, required=True, help="tar.gz, folder or batches")
    parser.add_argument("--out", type=Path, required=True, help="weights; metrics go beside")
    parser.add_argument(
        "--recipe", choices=sorted(RECIPES), default="default", help="preset the flags override"
    )
    setting("--epochs", type=int)
    setting("--batch-size", type=int)
    setting("--lr", type=float, text="peak learning rate")
    setting("--momentum", type=float)
    setting("--nesterov", action=argparse.BooleanOptionalAction)
    setting("--weight-decay", type=float)
    setting("--label-smoothing", type=float)
    setting("--warmup-epochs", type=float)
    setting("--schedule", choices=["onecycle", "constant"])
    setting("--crop-padding", type=int, text="random translation in pixels, 0 for none")
    setting("--flip", action=argparse.BooleanOptionalAction, text="random horizontal flips")
    setting("--clean-epochs", type=int, text="last epochs without augmentation")
    setting("--seed", type=int)
    setting("--device", choices=["auto", "cpu", "cuda"])
    setting("--channels-last", action=argparse.BooleanOptionalAction, text="memory format")
    parser.add_argument("--limit", type=int, help="at most this many images per class and split")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: PyTorch's)")
    parser.add_argument("--workers", type=int, default=2, help="processes decoding JPEGs")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    config = RECIPES[args.recipe]
    overrides = {
        name: getattr(args, name)
        for name in TrainConfig.__dataclass_fields__
        if name != "recipe" and getattr(args, name, None) is not None
    }
    config = replace(config, **overrides)
    if config.epochs < 1 or config.batch_size < 1 or config.lr <= 0:
        raise ValueError("epochs and batch size must be at least 1 and lr positive")
    return config


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = config_from_args(args)
        if args.threads:
            torch.set_num_threads(args.threads)
        command = "python -m app.train " + shlex.join(sys.argv[1:] if argv is None else argv)
        run(
            args.data,
            args.out,
            config,
            limit=args.limit,
            workers=args.workers,
            stream=None if args.quiet else sys.stderr,
            command=command,
        )
    except ValueError as exc:  # DataError, DeviceError and bad settings
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
