"""The shipped CIFAR-10 subsets: what they hold, how they load, the script that rebuilds them."""

import io
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from app.model import CLASSES
from app.training import subset
from app.training.data import DataError, load_cifar10
from app.training.subset import SUBSETS, load_subset, read_subset, subset_path, unpack
from tests.training.test_data import make_folder, make_tar


@pytest.mark.parametrize(("split", "per_class"), [("test", 100), ("train", 500)])
def test_shipped_subsets_hold_every_class_equally(split: str, per_class: int) -> None:
    images, labels = load_subset(split)  # type: ignore[arg-type]
    assert images.shape == (10 * per_class, 3, 32, 32) and images.dtype == torch.uint8
    assert torch.equal(labels, torch.arange(10).repeat_interleave(per_class))
    assert 60 < images.float().mean() < 190  # pictures, not blanks


def test_shipped_subsets_are_small_and_described() -> None:
    """(tests/test_wheel.py checks that the wheel carries them.)"""
    sizes = {split: subset_path(split).stat().st_size for split in ("test", "train")}
    assert sum(sizes.values()) <= 3_000_000, sizes
    readme = (SUBSETS / "README.md").read_text()
    assert "Krizhevsky" in readme and "Learning Multiple Layers of Features" in readme


@pytest.mark.parametrize("split", ["test", "train"])
def test_subset_pixels_are_the_jpegs_as_pillow_decodes_them(split: str) -> None:
    """The tensors against Pillow run here on the file's own members, every 97th of them."""
    images, labels = load_subset(split)  # type: ignore[arg-type]
    members = unpack(subset_path(split))
    assert len(members) == len(labels)
    for i in range(0, len(members), 97):
        name, blob = members[i]
        assert blob[:3] == b"\xff\xd8\xff"  # the original JPEG bytes
        folder_split, cls, _ = name.split("/")
        assert (folder_split, CLASSES.index(cls)) == (split, labels[i])
        expected = np.asarray(Image.open(io.BytesIO(blob)).convert("RGB")).transpose(2, 0, 1)
        assert torch.equal(images[i], torch.from_numpy(expected.copy()))


def test_a_split_is_decoded_once_for_every_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def counting(path: Path, split: str) -> subset.Subset:
        calls.append(split)
        return read_subset(path, split)

    subset._load.cache_clear()
    monkeypatch.setattr(subset, "read_subset", counting)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: load_subset("test"), range(8)))
    assert calls == ["test"]
    assert all(a.images is answers[0].images and a.labels is answers[0].labels for a in answers)


def test_unknown_split_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown split 'valid'"):
        load_subset("valid")  # type: ignore[arg-type]


def test_a_subset_file_of_the_wrong_split_is_refused() -> None:
    with pytest.raises(DataError, match="holds test images, expected train only"):
        read_subset(subset_path("test"), "train")


# The rebuild, on a tiny data set with 3 training and 2 test pictures per class -------------------


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(subset, "PER_CLASS", {"train": 2, "test": 1})
    folder = make_folder(tmp_path / "data")
    return make_tar(folder, tmp_path / "cifar10.tar.gz", top="cifar10")


def test_rebuild_keeps_the_first_pictures_by_name_and_is_byte_for_byte_repeatable(
    tiny: Path, tmp_path: Path
) -> None:
    first = subset.build(tiny, tmp_path / "a")
    second = subset.build(tiny, tmp_path / "b")
    for split in ("train", "test"):
        data = first[split].read_bytes()
        assert data == second[split].read_bytes()
        assert data[4:8] == b"\0\0\0\0"  # gzip's MTIME: no date
        with tarfile.open(first[split]) as tar:
            assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in tar} == {
                (0, 0, 0, "", "", 0o644)
            }
    names = [name for name, _ in unpack(first["train"])]
    assert names == [f"train/{c}/{i:04d}.jpg" for c in CLASSES for i in (0, 1)]
    # What they decode to is what the dataset reader keeps with the same limits.
    reference = load_cifar10(tiny, limit=2)
    train = read_subset(first["train"], "train")
    assert torch.equal(train.images, reference.train_images)
    assert torch.equal(train.labels, reference.train_labels)
    test = read_subset(first["test"], "test")
    assert torch.equal(test.images, load_cifar10(tiny, limit=1).test_images)


def test_check_says_whether_the_files_are_what_a_rebuild_gives(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "subsets"
    argv = ["--data", str(tiny), "--out", str(out)]
    assert subset.main(["build", *argv]) == 0
    assert "10 test pictures" in capsys.readouterr().out
    assert subset.main(["check", *argv]) == 0
    subset_path("test", out).write_bytes(subset.pack(unpack(subset_path("test", out))[:-1]))
    assert subset.main(["check", *argv]) == 1
    assert "cifar10-test.tar.gz differs from a rebuild" in capsys.readouterr().err
    assert subset.main(["check", "--data", str(tmp_path / "missing.tar.gz")]) == 2
