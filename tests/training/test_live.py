"""The live training job against a plain PyTorch loop written out here, on small made-up data."""

import io
import itertools
import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from app.model import CLASSES
from app.training.live import LiveOptions, train_live
from tests.training.test_train import TutorialNet

Data = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def make_data(train: int = 320, test: int = 100, seed: int = 0) -> Data:
    """uint8 pictures whose class shows in their colour, under noise: a Net learns it quickly."""
    g = torch.Generator().manual_seed(seed)
    colours = torch.randint(40, 216, (10, 3), generator=g)

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.randint(0, 10, (n,), generator=g)
        noise = torch.randint(-40, 41, (n, 3, 32, 32), generator=g)
        images = (colours[labels][:, :, None, None] + noise).clamp(0, 255).to(torch.uint8)
        return images, labels

    return (*split(train), *split(test))


DATA = make_data()


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """As the web layer runs a job (APP_LIVE_THREADS, default 1); on a busy two-core machine,
    two threads per step are many times slower than one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run(data: Data = DATA, **kwargs: Any) -> list[tuple[str, dict[str, Any]]]:
    options = {k: kwargs.pop(k) for k in list(kwargs) if k in LiveOptions.__dataclass_fields__}
    return list(train_live(*data, LiveOptions(**options), **kwargs))


def named(events: list[tuple[str, dict[str, Any]]], name: str) -> list[dict[str, Any]]:
    return [data for event, data in events if event == name]


def all_losses(events: list[tuple[str, dict[str, Any]]]) -> list[float]:
    return [loss for data in named(events, "progress") for loss in data["losses"]]


def tutorial_loop(data: Data, epochs: int, batch_size: int, lr: float, momentum: float, seed: int):
    """The tutorial's loop on tensors (ToTensor, Normalize(0.5, 0.5), SGD with momentum), the
    batches drawn as the job documents: torch.randperm from a CPU generator seeded with `seed`.
    The logits of the test pictures: of the fresh Net first, then after each epoch."""
    train_images, train_labels, test_images, _ = data
    torch.manual_seed(seed)
    net = TutorialNet()
    with torch.no_grad():
        logits = [net((test_images.float() / 255 - 0.5) / 0.5)]
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    order_generator = torch.Generator().manual_seed(seed)
    x = (train_images.float() / 255 - 0.5) / 0.5
    losses = []
    for _ in range(epochs):
        order = torch.randperm(len(train_labels), generator=order_generator)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            loss = F.cross_entropy(net(x[batch]), train_labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        with torch.no_grad():
            logits.append(net((test_images.float() / 255 - 0.5) / 0.5))
    return net, losses, logits


def test_the_job_is_the_tutorials_loop() -> None:
    """Every batch loss, each epoch's test accuracy and loss, the samples' softmax and the
    final weights are those of a plain PyTorch loop with the same seed."""
    options: dict[str, Any] = {
        "epochs": 2,
        "batch_size": 24,
        "lr": 0.03,
        "momentum": 0.8,
        "seed": 5,
    }
    events = run(**options)
    net, losses, logits = tutorial_loop(DATA, **options)

    assert [name for name, _ in events][:2] == ["start", "progress"]
    assert [name for name, _ in events][-1] == "done"
    assert all_losses(events) == losses
    start, epochs = named(events, "start")[0], named(events, "epoch")
    assert [e["epoch"] for e in epochs] == [1, 2]
    test_labels = DATA[3]
    expected = [test_labels.tolist().index(CLASSES.index(c)) for c in ("cat", "ship", "frog")]
    expected.append(test_labels.tolist().index(CLASSES.index("automobile")))
    for event, epoch_logits in zip([start, *epochs], logits, strict=True):
        accuracy = (epoch_logits.argmax(1) == test_labels).float().mean().item()
        assert event["test_accuracy"] == pytest.approx(accuracy, abs=1e-6)
        loss = F.cross_entropy(epoch_logits, test_labels).item()
        assert event["test_loss"] == pytest.approx(loss)
        samples = event["samples"]
        assert [s["index"] for s in samples] == expected
        assert [s["label"] for s in samples] == test_labels[expected].tolist()
        softmax = epoch_logits[expected].softmax(1)
        torch.testing.assert_close(torch.tensor([s["softmax"] for s in samples]), softmax)

    done = named(events, "done")[0]
    assert done["steps"] == len(losses) == 2 * math.ceil(320 / 24) and done["cut"] is False
    assert done["test_accuracy"] == epochs[-1]["test_accuracy"]
    # The tutorial's own Net reads the weights, with pickles refused.
    state = torch.load(io.BytesIO(done["weights"]), weights_only=True)
    loaded = TutorialNet()
    loaded.load_state_dict(state)
    for name, tensor in net.state_dict().items():
        assert torch.equal(state[name], tensor), name


def test_start_tells_what_the_job_will_do() -> None:
    start = run(epochs=3, batch_size=100, deadline=0.0)[0][1]
    assert start["epochs"] == 3 and start["batch_size"] == 100
    assert start["train_images"] == 320 and start["test_images"] == 100
    assert start["steps_per_epoch"] == 4 and start["total_steps"] == 12
    assert start["chance_loss"] == pytest.approx(math.log(10))
    assert start["classes"] == list(CLASSES)
    assert len(start["samples"]) == 4
    assert all(s["image"].startswith("data:image/png;base64,") for s in start["samples"])
    assert all(len(s["softmax"]) == 10 for s in start["samples"])


def test_it_starts_at_a_guess_among_ten_and_learns() -> None:
    events = run(epochs=4, batch_size=16)
    losses = all_losses(events)
    assert abs(losses[0] - math.log(10)) < 0.15
    assert sum(losses[-10:]) / 10 < losses[0] - 0.5
    accuracies = [e["test_accuracy"] for e in named(events, "epoch")]
    assert accuracies[-1] > 0.5  # 10% is chance


def test_same_seed_same_run_other_seed_other_run() -> None:
    first, again, other = run(seed=7), run(seed=7), run(seed=8)
    assert all_losses(first) == all_losses(again)
    assert named(first, "done")[0]["weights"] == named(again, "done")[0]["weights"]
    assert all_losses(first) != all_losses(other)


def test_the_global_generator_is_left_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    run(epochs=1, deadline=0.0)
    assert torch.equal(torch.rand(3), expected)


def test_progress_covers_every_step_once() -> None:
    """A few events a second, with every batch loss in them, the epoch's last step included."""
    events = run(epochs=2, batch_size=10)
    progress = named(events, "progress")
    assert progress[0]["step"] == 1 and len(progress[0]["losses"]) == 1
    assert sum(len(p["losses"]) for p in progress) == progress[-1]["step"] == 64
    for before, after in itertools.pairwise(progress):
        assert after["step"] - before["step"] == len(after["losses"])
        assert after["loss"] == after["losses"][-1]
    assert {32, 64} <= {p["step"] for p in progress}  # the end of each epoch
    assert len(progress) < 64  # not one event per step


def test_a_stop_ends_the_job_between_two_steps() -> None:
    stop = threading.Event()
    events = []
    for name, data in train_live(*DATA, LiveOptions(epochs=20), stop):
        events.append((name, data))
        if name == "progress":
            stop.set()
    assert [name for name, _ in events] == ["start", "progress", "stopped"]
    assert events[-1][1]["step"] == 1  # the step in progress when it was asked to stop


def test_the_deadline_cuts_the_job() -> None:
    data = make_data(train=2000)
    events = run(data, epochs=20, batch_size=1, deadline=time.monotonic() + 1.0)
    done = named(events, "done")[0]
    assert done["cut"] is True
    assert 0 < done["steps"] < 20 * 2000
    assert named(events, "progress")[-1]["step"] == done["steps"]  # the last losses are sent
    assert 0 <= done["test_accuracy"] <= 1


def test_a_deadline_already_past_trains_nothing() -> None:
    events = run(deadline=time.monotonic())
    assert [name for name, _ in events] == ["start", "done"]
    assert events[-1][1]["cut"] is True and events[-1][1]["steps"] == 0


def test_a_diverging_run_reports_nan_and_finishes() -> None:
    events = run(epochs=1, lr=1e6)
    assert any(math.isnan(loss) for loss in all_losses(events))
    assert named(events, "done")[0]["steps"] == math.ceil(320 / 32)


def test_too_few_test_pictures_for_four_samples() -> None:
    train_images, train_labels, test_images, test_labels = DATA
    data = (train_images, train_labels, test_images[:2], test_labels[:2])
    samples = named(run(data, epochs=1), "epoch")[0]["samples"]
    assert [s["index"] for s in samples] == [0, 1]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_same_seed_same_run_on_the_gpu() -> None:
    cuda = torch.device("cuda")
    first, again = run(epochs=2, device=cuda), run(epochs=2, device=cuda)
    assert all_losses(first) == all_losses(again)
    assert named(first, "done")[0]["weights"] == named(again, "done")[0]["weights"]
    weights = io.BytesIO(named(first, "done")[0]["weights"])
    torch.load(weights, weights_only=True, map_location="cpu")
