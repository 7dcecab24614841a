"""Live training: a fresh Net learns on a small CIFAR-10 subset while someone watches.

`train_live` is a generator of events, each a (name, data) pair of plain Python values: it
trains between two events, so whoever iterates it decides where the events go (the web layer
streams them). It stops between two steps when `stop` is set or the `deadline` passes.

    start     the job's options and sizes; the fresh Net's test accuracy and loss; the four
              test pictures whose softmax is followed, with the fresh Net's softmax of each
    progress  step, epoch and the batch loss, at most every PROGRESS_EVERY_S seconds, and
              `losses`: every batch loss since the previous progress event, so that a curve
              can be drawn step by step
    epoch     test accuracy and loss on the test pictures, and the four pictures' softmax
    done      steps, seconds, test accuracy, whether the deadline cut it short, and the
              trained state_dict as torch.save bytes
    stopped   the stop flag was seen (nobody is listening any more); nothing follows

The seed decides everything on a given device: the Net is initialised just after
torch.manual_seed(seed), and each epoch's batches follow the next torch.randperm drawn from
torch.Generator().manual_seed(seed), a CPU generator, so the order is the same on any device.
"""

import io
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

from app.model import CLASSES, Net, normalize
from app.model.images import Picture, preview_data_url

# How often a progress event is sent, at most (the first step and each epoch's last always are).
PROGRESS_EVERY_S = 0.2
# The pictures whose softmax the learner watches sharpen: the first test picture of each of
# these classes.
SAMPLE_CLASSES = ("cat", "ship", "frog", "automobile")
# The test pictures go through the Net 250 at a time, channels-last: 48 ms of CPU time for the
# 1,000 on one thread, against 100 ms as one contiguous batch (the 2-core development machine).
EVAL_BATCH = 250

Event = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class LiveOptions:
    """What the learner chooses; the ranges are checked by the caller (the web layer)."""

    epochs: int = 2
    batch_size: int = 32
    lr: float = 0.02
    momentum: float = 0.9
    seed: int = 0


# The global generator is the process's: one thread at a time seeds it and draws from it (a live
# job's thread and a /step with init=fresh on the compute lane may both want it).
_SEEDING = threading.Lock()


def fresh_net(seed: int, device: torch.device) -> Net:
    """The tutorial's Net, initialised after torch.manual_seed(seed), leaving the global
    generator as it found it."""
    with _SEEDING, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = Net()
    return net.to(device)


def sample_indices(labels: torch.Tensor, count: int = len(SAMPLE_CLASSES)) -> list[int]:
    """The first test picture of each SAMPLE_CLASSES class; the lowest other indices fill in
    for a class the labels lack."""
    chosen = []
    for name in SAMPLE_CLASSES:
        found = torch.nonzero(labels == CLASSES.index(name))
        if len(found):
            chosen.append(int(found[0, 0]))
    rest = (i for i in range(len(labels)) if i not in chosen)
    while len(chosen) < min(count, len(labels)):
        chosen.append(next(rest))
    return chosen[:count]


@torch.no_grad()
def test_metrics(
    net: Net, images: torch.Tensor, labels: torch.Tensor, samples: list[int]
) -> dict[str, Any]:
    """Accuracy and mean cross-entropy on the normalised test pictures, and the softmax of the
    sample pictures, with the Net in eval mode (put back in training mode after)."""
    net.eval()
    logits = torch.cat([net(images[i : i + EVAL_BATCH]) for i in range(0, len(images), EVAL_BATCH)])
    net.train()
    softmax = logits[samples].softmax(dim=1).tolist()  # (4, 10)
    return {
        "test_accuracy": float((logits.argmax(dim=1) == labels).float().mean()),
        "test_loss": float(F.cross_entropy(logits, labels)),
        "samples": [
            {"index": i, "label": int(labels[i]), "softmax": p}
            for i, p in zip(samples, softmax, strict=True)
        ],
    }


def state_dict_bytes(net: Net) -> bytes:
    """What torch.save(net.state_dict(), f) writes, with the tensors on the CPU, so that
    torch.load(f, weights_only=True) reads it back on any machine."""
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, buffer)
    return buffer.getvalue()


def train_live(
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    options: LiveOptions,
    stop: threading.Event | None = None,
    deadline: float = math.inf,
    device: torch.device | None = None,
) -> Iterator[Event]:
    """Train a fresh Net with SGD on uint8 (N, 3, 32, 32) images and int64 labels, yielding
    events; `deadline` is a time.monotonic() value."""
    started = time.monotonic()
    device = device or torch.device("cpu")
    stop = stop or threading.Event()
    if device.type == "cuda":  # cuDNN may otherwise pick kernels that add in any order
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    net = fresh_net(options.seed, device)
    x_train, y_train = train_images.to(device), train_labels.to(device)  # uint8 until a batch
    x_test = normalize(test_images.to(device)).contiguous(memory_format=torch.channels_last)
    y_test = test_labels.to(device)
    samples = sample_indices(test_labels)
    metrics = test_metrics(net, x_test, y_test, samples)
    yield "start", start_event(options, len(y_train), test_images, metrics)

    # The first optimizer of a process imports torch._dynamo: about a second, once.
    optimizer = torch.optim.SGD(net.parameters(), lr=options.lr, momentum=options.momentum)
    order_generator = torch.Generator().manual_seed(options.seed)
    losses = LossLog(started)
    step, cut = 0, False
    for epoch in range(1, options.epochs + 1):
        order = torch.randperm(len(y_train), generator=order_generator).to(device)
        batches = order.split(options.batch_size)
        for i, batch in enumerate(batches, start=1):
            if stop.is_set():
                yield "stopped", {"step": step, "epoch": epoch, "seconds": since(started)}
                return
            if cut := time.monotonic() >= deadline:
                break
            losses.add(train_step(net, optimizer, normalize(x_train[batch]), y_train[batch]))
            step += 1
            if step == 1 or i == len(batches) or losses.due():
                yield "progress", losses.event(step, epoch)
        if cut:
            break
        metrics = test_metrics(net, x_test, y_test, samples)
        summary = {"epoch": epoch, "step": step, "train_loss": losses.epoch_mean()}
        yield "epoch", {**summary, **metrics, "seconds": since(started)}

    if cut:
        if losses.pending:  # the last steps' losses, so that the curve ends where training did
            yield "progress", losses.event(step, epoch)
        metrics = test_metrics(net, x_test, y_test, samples)
    scores = {key: metrics[key] for key in ("test_accuracy", "test_loss")}
    weights = state_dict_bytes(net)
    yield (
        "done",
        {"steps": step, "seconds": since(started), "cut": cut, **scores, "weights": weights},
    )


class LossLog:
    """The batch losses: left on the device until a progress event reads them off together
    (one sync per event, not per step), and kept for the epoch's mean."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.pending: list[torch.Tensor] = []  # 0-dim, on the device
        self.epoch: list[float] = []
        self.last_sent = -math.inf

    def add(self, loss: torch.Tensor) -> None:
        self.pending.append(loss)

    def due(self) -> bool:
        return time.monotonic() - self.last_sent >= PROGRESS_EVERY_S

    def event(self, step: int, epoch: int) -> dict[str, Any]:
        losses = torch.stack(self.pending).tolist()
        self.pending.clear()
        self.epoch += losses
        self.last_sent = time.monotonic()
        seconds = since(self.started)
        return {
            "step": step,
            "epoch": epoch,
            "loss": losses[-1],
            "losses": losses,
            "seconds": seconds,
        }

    def epoch_mean(self) -> float:
        mean = sum(self.epoch) / len(self.epoch)
        self.epoch = []
        return mean


def train_step(
    net: Net, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """One SGD step on a batch; its loss, detached (0-dim)."""
    loss = F.cross_entropy(net(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def start_event(
    options: LiveOptions, train_count: int, test_images: torch.Tensor, metrics: dict[str, Any]
) -> dict[str, Any]:
    """What the job will do, and how the fresh Net does: its test accuracy and loss, and the
    sample pictures (as PNG data URLs) with its softmax of each."""
    steps_per_epoch = math.ceil(train_count / options.batch_size)
    return {
        **asdict(options),
        "train_images": train_count,
        "test_images": len(test_images),
        "steps_per_epoch": steps_per_epoch,
        "total_steps": steps_per_epoch * options.epochs,
        "classes": list(CLASSES),
        "chance_loss": math.log(len(CLASSES)),  # a guess among 10 classes: -log(1/10)
        **metrics,
        "samples": [
            {**sample, "image": data_url(sample["index"], test_images[sample["index"]])}
            for sample in metrics["samples"]
        ],
    }


def data_url(index: int, pixels: torch.Tensor) -> str:
    """A PNG data URL of a uint8 (3, 32, 32) test picture."""
    return preview_data_url(Picture(f"test-{index}", "PNG", (32, 32), pixels))


def since(started: float) -> float:
    return round(time.monotonic() - started, 3)
