"""The training loop: a fresh Net trained on CIFAR-10 arrays, and its metrics."""

import math
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, TextIO

import torch
import torch.nn.functional as F

from app.model import CLASSES, Net, normalize, parameter_count, pick_device
from app.training.data import Cifar10

EVAL_BATCH = 1000


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the weights, given the data."""

    recipe: str = "default"
    epochs: int = 40
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-3
    label_smoothing: float = 0.0
    warmup_epochs: float = 2.0
    schedule: str = "onecycle"  # "onecycle": linear warm-up then cosine to zero; "constant"
    crop_padding: int = 2  # random translation by up to this many pixels; 0 turns it off
    flip: bool = True
    clean_epochs: int = 0  # the last epochs see the images unaugmented
    seed: int = 0
    device: str = "auto"
    channels_last: bool = True


# The PyTorch CIFAR-10 tutorial's loop: batch 4, SGD lr 0.001 momentum 0.9, 2 epochs, no extras.
RECIPES: dict[str, TrainConfig] = {
    "default": TrainConfig(),
    "tutorial": TrainConfig(
        recipe="tutorial",
        epochs=2,
        batch_size=4,
        lr=0.001,
        momentum=0.9,
        nesterov=False,
        weight_decay=0.0,
        label_smoothing=0.0,
        warmup_epochs=0.0,
        schedule="constant",
        crop_padding=0,
        flip=False,
        channels_last=False,
    ),
}


def describe_augmentation(config: TrainConfig) -> str:
    parts = []
    if config.crop_padding:
        parts.append(f"random translation by up to {config.crop_padding} px (zero padding)")
    if config.flip:
        parts.append("random horizontal flip")
    if not parts:
        return "none"
    text = " + ".join(parts) + ", per batch on uint8 tensors"
    if config.clean_epochs:
        text += f"; none in the last {config.clean_epochs} epochs"
    return text


def describe_schedule(config: TrainConfig) -> str:
    sgd = f"SGD momentum {config.momentum}" + (" nesterov" if config.nesterov else "")
    sgd += f", weight decay {config.weight_decay}"
    if config.label_smoothing:
        sgd += f", label smoothing {config.label_smoothing}"
    if config.schedule == "constant":
        return f"{sgd}; constant lr {config.lr}"
    return (
        f"{sgd}; lr warms up linearly to {config.lr} over {config.warmup_epochs} epochs, "
        "then cosine decay to 0, updated every step"
    )


def lr_factor(config: TrainConfig, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """Multiplier on config.lr before optimizer step `step` (0-based)."""
    if config.schedule == "constant":
        return 1.0
    warmup = round(config.warmup_epochs * steps_per_epoch)
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def augment(images: torch.Tensor, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """Normalise a uint8 batch, then translate and flip it at random, image by image."""
    x = normalize(images)
    n, _, height, width = x.shape
    # Draw on the CPU generator so that a seed gives the same batches on any device.
    pad = config.crop_padding
    if pad:
        shifts = torch.randint(0, 2 * pad + 1, (2, n), generator=generator).to(x.device)
        padded = F.pad(x, (pad, pad, pad, pad))
        rows = (shifts[0, :, None] + torch.arange(height, device=x.device))[:, None, :, None]
        cols = (shifts[1, :, None] + torch.arange(width, device=x.device))[:, None, None, :]
        batch = torch.arange(n, device=x.device)[:, None, None, None]
        channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
        x = padded[batch, channel, rows, cols]
    if config.flip:
        flips = (torch.rand(n, generator=generator) < 0.5).to(x.device)
        x = torch.where(flips[:, None, None, None], x.flip(3), x)
    return x


class Progress:
    """A one-line progress bar on a terminal, one line per epoch otherwise."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.live = stream is not None and stream.isatty()
        self.last = 0.0

    def due(self) -> bool:
        """Whether the bar should be redrawn now (at most five times a second)."""
        if not self.live or time.monotonic() - self.last < 0.2:
            return False
        self.last = time.monotonic()
        return True

    def update(self, text: str, done: int, total: int) -> None:
        assert self.stream is not None
        filled = int(24 * done / max(1, total))
        self.stream.write(f"\r[{'#' * filled}{'.' * (24 - filled)}] {text}\x1b[K")
        self.stream.flush()

    def line(self, text: str) -> None:
        if self.stream is None:
            return
        self.stream.write(("\r" if self.live else "") + text + ("\x1b[K\n" if self.live else "\n"))
        self.stream.flush()


@torch.no_grad()
def evaluate(
    net: Net, images: torch.Tensor, labels: torch.Tensor, config: TrainConfig
) -> torch.Tensor:
    """Confusion matrix (rows = true class) of the Net in eval mode on unaugmented images."""
    net.eval()
    device = next(net.parameters()).device
    confusion = torch.zeros(len(CLASSES), len(CLASSES), dtype=torch.int64)
    for start in range(0, len(labels), EVAL_BATCH):
        x = normalize(images[start : start + EVAL_BATCH].to(device))
        if config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        predicted = net(x).argmax(1).cpu()
        confusion += confusion_matrix(labels[start : start + EVAL_BATCH], predicted)
    return confusion


def confusion_matrix(truth: torch.Tensor, predicted: torch.Tensor) -> torch.Tensor:
    """(10, 10) int64 counts: row = true class, column = predicted class."""
    classes = len(CLASSES)
    return torch.bincount(truth * classes + predicted, minlength=classes**2).view(classes, classes)


def accuracy(confusion: torch.Tensor) -> float:
    return float(confusion.diag().sum()) / max(1, int(confusion.sum()))


def train(
    data: Cifar10, config: TrainConfig, stream: TextIO | None = None
) -> tuple[Net, dict[str, Any]]:
    """Train a fresh Net; return it with the metrics (everything but data and timing notes)."""
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    net = Net().to(device)
    if config.channels_last:
        for parameter in net.parameters():
            if parameter.dim() == 4:  # conv weights
                parameter.data = parameter.data.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(
        net.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov,
        weight_decay=config.weight_decay,
    )
    train_images = data.train_images.to(device)
    train_labels = data.train_labels.to(device)
    count = len(train_labels)
    steps_per_epoch = math.ceil(count / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    progress = Progress(stream)
    history: dict[str, list[float]] = {
        "train_loss": [],
        "train_accuracy": [],
        "test_accuracy": [],
        "lr": [],
        "epoch_time_s": [],
    }
    plain = replace(config, crop_padding=0, flip=False)
    step = 0
    started = time.perf_counter()
    for epoch in range(config.epochs):
        epoch_start = time.perf_counter()
        clean = epoch >= config.epochs - config.clean_epochs
        net.train()
        order = torch.randperm(count, generator=generator).to(device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        for start in range(0, count, config.batch_size):
            index = order[start : start + config.batch_size]
            x = augment(train_images[index], plain if clean else config, generator)
            if config.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            y = train_labels[index]
            for group in optimizer.param_groups:
                group["lr"] = config.lr * lr_factor(config, step, total_steps, steps_per_epoch)
            logits = net(x)
            loss = F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            with torch.no_grad():
                loss_sum += loss.detach() * len(y)
                correct += (logits.argmax(1) == y).sum()
            if progress.due():
                seen = min(start + config.batch_size, count)
                progress.update(
                    f"epoch {epoch + 1}/{config.epochs} {seen}/{count} "
                    f"loss {float(loss_sum) / seen:.3f} acc {int(correct) / seen:.1%}",
                    seen,
                    count,
                )
        confusion = evaluate(net, data.test_images, data.test_labels, config)
        history["train_loss"].append(round(float(loss_sum) / count, 5))
        history["train_accuracy"].append(round(int(correct) / count, 5))
        history["test_accuracy"].append(round(accuracy(confusion), 5))
        history["lr"].append(optimizer.param_groups[0]["lr"])
        history["epoch_time_s"].append(round(time.perf_counter() - epoch_start, 3))
        progress.line(
            f"epoch {epoch + 1}/{config.epochs}  loss {history['train_loss'][-1]:.4f}  "
            f"train {history['train_accuracy'][-1]:.2%}  test {history['test_accuracy'][-1]:.2%}  "
            f"lr {history['lr'][-1]:.4g}  {time.perf_counter() - started:.0f}s"
        )
    net.eval()
    train_time = time.perf_counter() - started
    per_class = confusion.diag().double() / confusion.sum(1).clamp(min=1).double()
    metrics: dict[str, Any] = {
        "test_accuracy": round(accuracy(confusion), 5),
        "per_class_accuracy": {
            c: round(float(a), 5) for c, a in zip(CLASSES, per_class, strict=True)
        },
        "confusion_matrix": confusion.tolist(),
        "classes": list(CLASSES),
        "history": history,
        "recipe": config.recipe,
        "seed": config.seed,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "lr": config.lr,
        "augmentation": describe_augmentation(config),
        "schedule": describe_schedule(config),
        "config": asdict(config),
        "train_images": count,
        "test_images": len(data.test_labels),
        "train_time_s": round(train_time, 2),
        "seconds_per_epoch": round(train_time / max(config.epochs, 1), 2),  # machines differ
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "parameter_count": parameter_count(net),
    }
    return net, metrics
