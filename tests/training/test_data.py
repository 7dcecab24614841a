"""Reading CIFAR-10 in its three layouts, on tiny datasets built in tmp_path."""

import hashlib
import io
import pickle
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from app.model import CLASSES
from app.training import data as data_module
from app.training.data import Cifar10, DataError, load_cifar10

TRAIN_PER_CLASS = 3
TEST_PER_CLASS = 2


def class_color(label: int, index: int) -> tuple[int, int, int]:
    """A flat colour that JPEG keeps to within a few levels and that says the class."""
    return (20 + 20 * label, 200 - 15 * label, 40 + 30 * index)


def make_folder(root: Path, train: int = TRAIN_PER_CLASS, test: int = TEST_PER_CLASS) -> Path:
    """root/train/<class>/NNNN.jpg and root/test/<class>/NNNN.jpg, as in the shipped tar."""
    for split, count in (("train", train), ("test", test)):
        for label, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for index in range(count):
                image = Image.new("RGB", (32, 32), class_color(label, index))
                image.putpixel((index, label), (255, 255, 255))
                image.save(folder / f"{index:04d}.jpg", quality=95)
    return root


def make_tar(folder: Path, out: Path, top: str | None = None) -> Path:
    """Pack the folder layout as a .tar.gz, optionally under one top folder."""
    with tarfile.open(out, "w:gz") as archive:
        for path in sorted(folder.rglob("*")):
            name = path.relative_to(folder).as_posix()
            archive.add(path, arcname=f"{top}/{name}" if top else name, recursive=False)
    return out


def make_batches(folder: Path, out: Path, protocol: int = 2) -> Path:
    """A cifar-10-batches-py folder holding the folder layout's decoded pixels, in its order."""
    out.mkdir()
    splits = {}
    for split in ("train", "test"):
        rows, labels = [], []
        for label, name in enumerate(CLASSES):
            for file in sorted((folder / split / name).glob("*.jpg")):
                pixels = np.asarray(Image.open(file).convert("RGB"))  # H, W, C
                rows.append(pixels.transpose(2, 0, 1).reshape(-1))
                labels.append(label)
        splits[split] = (np.stack(rows), labels)
    train_x, train_y = splits["train"]
    parts = np.array_split(np.arange(len(train_y)), 5)
    for i, part in enumerate(parts, start=1):
        batch = {
            b"batch_label": f"training batch {i} of 5".encode(),
            b"labels": [train_y[j] for j in part],
            b"data": train_x[part],
            b"filenames": [f"{j}.png".encode() for j in part],
        }
        (out / f"data_batch_{i}").write_bytes(pickle.dumps(batch, protocol=protocol))
    test_x, test_y = splits["test"]
    batch = {b"batch_label": b"testing batch 1 of 1", b"labels": test_y, b"data": test_x}
    (out / "test_batch").write_bytes(pickle.dumps(batch, protocol=protocol))
    (out / "batches.meta").write_bytes(pickle.dumps({b"label_names": list(CLASSES)}))
    return out


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cifar")
    folder = make_folder(root / "cifar10")
    return {
        "folder": folder,
        "tar": make_tar(folder, root / "cifar10.tar.gz"),
        "tar_top": make_tar(folder, root / "cifar10-top.tar.gz", top="cifar10"),
        "batches": make_batches(folder, root / "cifar-10-batches-py"),
    }


def check_shapes_and_labels(data: Cifar10) -> None:
    assert data.train_images.shape == (10 * TRAIN_PER_CLASS, 3, 32, 32)
    assert data.test_images.shape == (10 * TEST_PER_CLASS, 3, 32, 32)
    assert data.train_images.dtype == data.test_images.dtype == torch.uint8
    assert data.train_labels.dtype == data.test_labels.dtype == torch.int64
    expected = torch.arange(10).repeat_interleave(TRAIN_PER_CLASS)
    assert torch.equal(data.train_labels, expected)
    assert torch.equal(data.test_labels, torch.arange(10).repeat_interleave(TEST_PER_CLASS))
    # Each image's colour says its class: the label is that of the folder it came from.
    for images, labels, per_class in (
        (data.train_images, data.train_labels, TRAIN_PER_CLASS),
        (data.test_images, data.test_labels, TEST_PER_CLASS),
    ):
        for i, label in enumerate(labels.tolist()):
            red, green, blue = images[i, :, 20, 20].tolist()  # away from the white marker pixel
            want = class_color(label, i % per_class)
            assert abs(red - want[0]) <= 4 and abs(green - want[1]) <= 4
            assert abs(blue - want[2]) <= 4
    assert len(data.sha256) == 64


@pytest.mark.parametrize("layout", ["folder", "tar", "tar_top", "batches"])
def test_every_layout_reads_shapes_and_labels(layouts: dict[str, Path], layout: str) -> None:
    data = load_cifar10(layouts[layout])
    check_shapes_and_labels(data)
    assert data.layout == layout.removesuffix("_top")


def test_layouts_read_identically(layouts: dict[str, Path]) -> None:
    reads = [load_cifar10(layouts[name]) for name in ("folder", "tar", "tar_top", "batches")]
    first = reads[0]
    for other in reads[1:]:
        assert torch.equal(first.train_images, other.train_images)
        assert torch.equal(first.test_images, other.test_images)
        assert torch.equal(first.train_labels, other.train_labels)
        assert torch.equal(first.test_labels, other.test_labels)


def test_sha256_of_a_tar_is_the_file_hash(layouts: dict[str, Path]) -> None:
    expected = hashlib.sha256(layouts["tar"].read_bytes()).hexdigest()
    assert load_cifar10(layouts["tar"]).sha256 == expected


def test_sha256_of_a_folder_hashes_each_picture_and_its_name(
    layouts: dict[str, Path], tmp_path: Path
) -> None:
    """sha256 over "name NUL sha256(bytes)" of each picture, train then test, by class, by name:
    one changed byte or name changes it, a file that is not a picture does not."""
    folder = layouts["folder"]
    pictures = sorted(
        folder.rglob("*.jpg"),
        key=lambda p: (["train", "test"].index(p.parts[-3]), CLASSES.index(p.parts[-2]), p.name),
    )
    digest = hashlib.sha256()
    for picture in pictures:
        name = picture.relative_to(folder).as_posix().encode()
        digest.update(name + b"\0" + hashlib.sha256(picture.read_bytes()).digest())
    assert load_cifar10(folder).sha256 == digest.hexdigest()

    copy = shutil.copytree(folder, tmp_path / "copy")
    (copy / "README.txt").write_text("not a picture")
    assert load_cifar10(copy).sha256 == digest.hexdigest()
    first = copy / "train" / "airplane" / "0000.jpg"
    first.write_bytes(first.read_bytes() + b"\0")  # JPEG decoders ignore bytes past the end
    changed = load_cifar10(copy).sha256
    first.rename(first.with_name("0009.jpg"))
    assert len({digest.hexdigest(), changed, load_cifar10(copy).sha256}) == 3


def test_batches_folder_found_from_its_parent(layouts: dict[str, Path]) -> None:
    data = load_cifar10(layouts["batches"].parent)
    assert data.layout == "batches"


def test_limit_keeps_the_first_images_of_each_class(layouts: dict[str, Path]) -> None:
    for name in ("tar", "batches"):
        data = load_cifar10(layouts[name], limit=1)
        assert torch.equal(data.train_labels, torch.arange(10))
        assert torch.equal(data.test_labels, torch.arange(10))
        full = load_cifar10(layouts[name])
        assert torch.equal(data.train_images[3], full.train_images[3 * TRAIN_PER_CLASS])


def test_decoding_in_a_process_pool_gives_the_same_pixels(
    layouts: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    serial = load_cifar10(layouts["tar"], workers=1)
    monkeypatch.setattr(data_module, "POOL_MIN_IMAGES", 0)
    pooled = load_cifar10(layouts["tar"], workers=2)
    assert torch.equal(serial.train_images, pooled.train_images)
    assert torch.equal(serial.test_images, pooled.test_images)


def test_official_python2_style_pickles_load(layouts: dict[str, Path], tmp_path: Path) -> None:
    """The official batches name numpy.core.multiarray, which numpy 2 calls numpy._core."""
    old = tmp_path / "cifar-10-batches-py"
    old.mkdir()
    for file in layouts["batches"].iterdir():
        raw = file.read_bytes().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
        (old / file.name).write_bytes(raw)
    assert b"numpy.core.multiarray" in (old / "test_batch").read_bytes()
    data = load_cifar10(old)
    assert torch.equal(data.test_images, load_cifar10(layouts["batches"]).test_images)


def test_pickles_that_build_other_objects_are_refused(
    layouts: dict[str, Path], tmp_path: Path
) -> None:
    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("this must never run",))

    bad = tmp_path / "cifar-10-batches-py"
    bad.mkdir()
    for file in layouts["batches"].iterdir():
        (bad / file.name).write_bytes(file.read_bytes())
    (bad / "test_batch").write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(DataError, match=r"test_batch: not a CIFAR-10 batch .*refusing"):
        load_cifar10(bad)


def test_batch_with_wrong_contents_is_refused(layouts: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "batches"
    bad.mkdir()
    for file in layouts["batches"].iterdir():
        (bad / file.name).write_bytes(file.read_bytes())
    batch = {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}
    (bad / "data_batch_3").write_bytes(pickle.dumps(batch))
    with pytest.raises(DataError, match=r"data_batch_3: data is uint8 \(2, 100\)"):
        load_cifar10(bad)
    (bad / "data_batch_3").unlink()
    with pytest.raises(DataError, match="data_batch_3 is missing"):
        load_cifar10(bad)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="dataset not found"):
        load_cifar10(tmp_path / "nothing.tar.gz")


def test_not_a_dataset(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="not a tar archive"):
        load_cifar10(tmp_path / "notes.txt")
    with pytest.raises(DataError, match="no train/<class>/ images found"):
        load_cifar10(tmp_path)


def test_unknown_class_folder(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "data", train=1, test=1)
    (folder / "train" / "unicorn").mkdir()
    Image.new("RGB", (32, 32)).save(folder / "train" / "unicorn" / "0000.jpg")
    with pytest.raises(DataError, match="unknown class folder 'unicorn'"):
        load_cifar10(folder)


def test_wrong_image_size_and_broken_image(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "data", train=1, test=1)
    Image.new("RGB", (64, 48)).save(folder / "test" / "cat" / "0000.jpg")
    with pytest.raises(DataError, match=r"test/cat/0000.jpg: image is 64x48, expected 32x32"):
        load_cifar10(folder)
    (folder / "test" / "cat" / "0000.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=r"test/cat/0000\.jpg: cannot decode the image"):
        load_cifar10(folder)


def test_grayscale_and_png_images_become_rgb(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "data", train=1, test=1)
    (folder / "train" / "dog" / "0000.jpg").unlink()
    Image.new("L", (32, 32), 77).save(folder / "train" / "dog" / "0000.png")
    data = load_cifar10(folder)
    dog = data.train_images[CLASSES.index("dog")]
    assert dog.shape == (3, 32, 32)
    assert torch.all(dog == 77)


def test_truncated_tar_is_a_data_error(layouts: dict[str, Path], tmp_path: Path) -> None:
    raw = layouts["tar"].read_bytes()
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError):
        load_cifar10(broken)


def test_folder_hash_changes_with_contents(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "data", train=1, test=1)
    before = load_cifar10(folder).sha256
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (1, 2, 3)).save(buffer, format="JPEG")
    (folder / "test" / "ship" / "0000.jpg").write_bytes(buffer.getvalue())
    assert load_cifar10(folder).sha256 != before


def test_pictures_not_32x32_are_refused_from_their_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A header declaring 9000x9000 pixels (under Pillow's own bomb limit) is refused before
    anything is decoded."""
    from PIL import ImageFile

    from tests.web.test_bad_input import png_claiming

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a picture was decoded")

    folder = make_folder(tmp_path / "data", train=1, test=1)
    (folder / "test" / "dog" / "0000.jpg").unlink()
    (folder / "test" / "dog" / "0000.png").write_bytes(png_claiming(9000, 9000))
    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    with pytest.raises(DataError, match=r"test/dog/0000.png: image is 9000x9000, expected 32x32"):
        data_module._decode_chunk(
            [((folder / "test/dog/0000.png").read_bytes(), "test/dog/0000.png")]
        )


def test_postscript_in_the_data_never_reaches_its_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An EPS file named .png: Pillow's EPS plugin would run Ghostscript on it."""
    from PIL import EpsImagePlugin

    from tests.web.test_bad_input import EPS

    def explode(*args: object, **kwargs: object) -> None:
        raise AssertionError("the EPS plugin was invoked on a training picture")

    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", explode)
    folder = make_folder(tmp_path / "data", train=1, test=1)
    (folder / "train" / "cat" / "0000.jpg").unlink()
    (folder / "train" / "cat" / "0000.png").write_bytes(EPS)
    with pytest.raises(DataError, match=r"train/cat/0000.png: cannot decode the image"):
        load_cifar10(folder)
