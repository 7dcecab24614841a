"""Training on tiny datasets in every layout: weights, metrics JSON, reproducibility."""

import io
import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from app.model import CLASSES, normalize
from app.training.cli import main
from app.training.data import load_cifar10
from app.training.loop import RECIPES, TrainConfig, augment, lr_factor, train
from tests.training.test_data import make_batches, make_folder, make_tar

REPO = Path(__file__).resolve().parents[2]


class TutorialNet(nn.Module):
    """The PyTorch CIFAR-10 tutorial's Net, verbatim (its class is called Net there)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)  # flatten all dimensions except batch
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x


METRIC_KEYS = {
    "test_accuracy",
    "per_class_accuracy",
    "confusion_matrix",
    "history",
    "seed",
    "epochs",
    "batch_size",
    "lr",
    "augmentation",
    "schedule",
    "wall_time_s",
    "device",
    "torch_version",
    "data",
    "data_sha256",
    "parameter_count",
    "command",
    "weights_sha256",
}


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cifar")
    folder = make_folder(root / "cifar10", train=4, test=2)
    return {
        "folder": folder,
        "tar": make_tar(folder, root / "cifar10.tar.gz", top="cifar10"),
        "batches": make_batches(folder, root / "cifar-10-batches-py"),
    }


def train_once(data: Path, out: Path, *extra: str) -> dict:
    argv = ["--data", str(data), "--out", str(out), "--epochs", "1", "--batch-size", "8"]
    assert main([*argv, "--quiet", "--device", "cpu", *extra]) == 0
    return json.loads(out.with_suffix(".json").read_text())


@pytest.mark.parametrize("layout", ["folder", "tar", "batches"])
def test_one_epoch_on_each_layout(layouts: dict[str, Path], layout: str, tmp_path: Path) -> None:
    out = tmp_path / "weights" / "cifar_net.pth"
    metrics = train_once(layouts[layout], out)

    tutorial = TutorialNet()
    state = torch.load(out, weights_only=True)
    tutorial.load_state_dict(state, strict=True)
    assert all(v.is_contiguous() for v in state.values())

    assert set(metrics) >= METRIC_KEYS
    assert metrics["data"] == layouts[layout].name
    assert metrics["data_layout"] == layout
    assert metrics["epochs"] == 1 and metrics["seed"] == 0 and metrics["batch_size"] == 8
    # one epoch: the seconds per epoch are the training time, which the epochs' own times sum to
    assert metrics["seconds_per_epoch"] == metrics["train_time_s"] > 0
    assert metrics["train_time_s"] >= sum(metrics["history"]["epoch_time_s"]) - 0.01
    assert metrics["test_images"] == 20 and metrics["train_images"] == 40
    assert len(metrics["confusion_matrix"]) == 10
    assert all(len(row) == 10 for row in metrics["confusion_matrix"])
    assert [sum(row) for row in metrics["confusion_matrix"]] == [2] * 10
    correct = sum(metrics["confusion_matrix"][i][i] for i in range(10))
    assert metrics["test_accuracy"] == pytest.approx(correct / 20)
    assert set(metrics["per_class_accuracy"]) == set(CLASSES)
    for key in ("train_loss", "train_accuracy", "test_accuracy", "lr", "epoch_time_s"):
        assert len(metrics["history"][key]) == 1
    assert metrics["history"]["test_accuracy"][-1] == metrics["test_accuracy"]
    assert metrics["parameter_count"] == 62006
    assert metrics["device"] == "cpu"
    assert metrics["command"].startswith("python -m app.train --data ")


def test_same_seed_same_weights(layouts: dict[str, Path], tmp_path: Path) -> None:
    runs = {}
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        out = tmp_path / f"{name}.pth"
        train_once(layouts["tar"], out, "--seed", seed)
        runs[name] = torch.load(out, weights_only=True)
    for key in runs["a"]:
        assert torch.equal(runs["a"][key], runs["b"][key]), key
    assert not torch.equal(runs["a"]["conv1.weight"], runs["c"]["conv1.weight"])


def test_tutorial_recipe_is_the_tutorials_loop(layouts: dict[str, Path], tmp_path: Path) -> None:
    tutorial = RECIPES["tutorial"]
    assert (tutorial.epochs, tutorial.batch_size, tutorial.lr, tutorial.momentum) == (
        2,
        4,
        0.001,
        0.9,
    )
    assert not tutorial.nesterov and tutorial.weight_decay == 0
    assert tutorial.crop_padding == 0 and not tutorial.flip and tutorial.schedule == "constant"
    out = tmp_path / "tutorial.pth"
    argv = ["--data", str(layouts["folder"]), "--out", str(out), "--recipe", "tutorial"]
    assert main([*argv, "--quiet", "--epochs", "1"]) == 0
    metrics = json.loads(out.with_suffix(".json").read_text())
    assert metrics["recipe"] == "tutorial" and metrics["batch_size"] == 4
    assert metrics["augmentation"] == "none"
    assert metrics["history"]["lr"] == [0.001]


def test_augment_translates_and_flips_without_changing_shape() -> None:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    plain = TrainConfig(crop_padding=0, flip=False)
    assert torch.equal(augment(images, plain, generator), normalize(images))

    flipped = augment(images, TrainConfig(crop_padding=0, flip=True), generator)
    for i in range(16):
        assert torch.equal(flipped[i], normalize(images[i])) or torch.equal(
            flipped[i], normalize(images[i]).flip(2)
        )

    shifted = augment(images, TrainConfig(crop_padding=2, flip=False), generator)
    assert shifted.shape == (16, 3, 32, 32)
    for i in range(16):
        # Some translation by at most 2 pixels, the uncovered border filled with zeros.
        found = False
        padded = F.pad(normalize(images[i]), (2, 2, 2, 2))
        for dy in range(5):
            for dx in range(5):
                found |= torch.equal(shifted[i], padded[:, dy : dy + 32, dx : dx + 32])
        assert found


def test_lr_schedule_warms_up_then_decays_to_zero() -> None:
    config = TrainConfig(warmup_epochs=1, schedule="onecycle")
    factors = [lr_factor(config, step, 100, 10) for step in range(100)]
    assert factors[0] == pytest.approx(0.1)
    assert factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(factors[9:]))
    assert factors[-1] < 0.001
    constant = TrainConfig(schedule="constant")
    assert {lr_factor(constant, step, 100, 10) for step in range(100)} == {1.0}


def test_clean_epochs_train(layouts: dict[str, Path], tmp_path: Path) -> None:
    metrics = train_once(layouts["tar"], tmp_path / "w.pth", "--clean-epochs", "1")
    assert "none in the last 1 epochs" in metrics["augmentation"]


def test_bad_arguments_exit_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "w.pth"
    assert main(["--data", str(tmp_path / "missing"), "--out", str(out), "--quiet"]) == 2
    assert "error: dataset not found" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_exits_with_a_message(
    layouts: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--data", str(layouts["tar"]), "--out", str(tmp_path / "w.pth"), "--quiet"]
    assert main([*argv, "--device", "cuda"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err


def test_command_line_entry_point(layouts: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "cli.pth"
    argv = ["--data", str(layouts["batches"]), "--out", str(out), "--epochs", "1", "--limit", "1"]
    result = subprocess.run(
        [sys.executable, "-m", "app.train", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "epoch 1/1" in result.stderr and "test accuracy" in result.stderr
    metrics = json.loads(out.with_suffix(".json").read_text())
    assert metrics["train_images"] == 10 and metrics["data_limit_per_class"] == 1
    assert metrics["command"] == "python -m app.train " + " ".join(argv)


def test_progress_bar_on_a_terminal(layouts: dict[str, Path], tmp_path: Path) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    config = TrainConfig(epochs=1, batch_size=8, device="cpu")
    net, metrics = train(load_cifar10(layouts["folder"]), config, stream)
    text = stream.getvalue()
    assert "\r[" in text and "epoch 1/1 8/40 loss" in text
    assert "test" in text.splitlines()[-1]
    assert metrics["epochs"] == 1 and not net.training


@pytest.mark.parametrize(
    ("name", "what"),
    [("weights.json", "metrics"), ("weights.JSON", "metrics"), ("w.html", "report")],
)
def test_out_that_a_file_beside_it_would_overwrite_is_refused(
    layouts: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    what: str,
) -> None:
    """The metrics and the report go beside the weights as <name>.json and <name>.html: --out
    weights.json would have its weights overwritten by the metrics. Refused before any data is
    read, and the file left alone."""
    out = tmp_path / name
    out.write_text("earlier weights")
    argv = ["--data", str(layouts["tar"]), "--out", str(out), "--epochs", "1", "--limit", "1"]
    assert main([*argv, "--quiet", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --out {out} would be overwritten by the {what}")
    assert f"name the weights {out.with_suffix('.pth')}" in err
    assert out.read_text() == "earlier weights"


def test_a_decompression_bomb_in_the_data_is_an_error_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A picture whose header declares more pixels than Pillow opens (a decompression bomb):
    exit code 2 and a sentence, not a traceback."""
    from tests.web.test_bad_input import png_claiming

    folder = make_folder(tmp_path / "data", train=1, test=1)
    (folder / "train" / "cat" / "0000.jpg").unlink()
    (folder / "train" / "cat" / "0000.png").write_bytes(png_claiming(20_000, 20_000))
    out = tmp_path / "w.pth"
    assert main(["--data", str(folder), "--out", str(out), "--quiet", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: train/cat/0000.png: cannot decode the image (Image size")
    assert "Traceback" not in err and not out.exists()
