"""Reading CIFAR-10 from a folder-per-class tar.gz or folder, or the official Python batches."""

import hashlib
import io
import multiprocessing
import pickle
import tarfile
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from app.engine import InputError
from app.model import CLASSES, sha256_file
from app.model.images import ALLOWED_FORMATS

SPLITS: tuple[str, str] = ("train", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
BATCH_FILES: dict[str, tuple[str, ...]] = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
}
SIDE = 32
POOL_MIN_IMAGES = 2000  # fewer images decode faster than a process pool starts


class DataError(InputError):
    """A dataset path that cannot be read as CIFAR-10; the message is meant for the user."""

    code = "dataset_unreadable"


@dataclass(frozen=True)
class Cifar10:
    """Both splits as uint8 (N, 3, 32, 32) images and int64 labels, in CIFAR-10's class order."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    sha256: str
    layout: str  # "tar", "folder" or "batches"
    source: str  # the file or folder name that was read


@dataclass(frozen=True)
class _Entry:
    split: str
    label: int
    name: str  # path inside the tar or folder, "/"-separated


def load_cifar10(path: Path, limit: int | None = None, workers: int = 1) -> Cifar10:
    """Read CIFAR-10 from PATH in whichever of the three layouts it is.

    limit keeps at most that many images per class in each split (the first by file name or
    batch order); workers > 1 decodes JPEGs in that many processes.
    """
    path = Path(path)
    if limit is not None and limit < 1:
        raise DataError(f"limit must be at least 1, got {limit}")
    if not path.exists():
        raise DataError(f"dataset not found: {path}")
    if path.is_file() and tarfile.is_tarfile(path):
        return _read_tar(path, limit, workers)
    if path.is_dir():
        for folder in (path, path / "cifar-10-batches-py"):
            if (folder / "test_batch").is_file():
                return _read_batches(folder, limit)
        return _read_folder(path, limit, workers)
    raise DataError(
        f"{path.name}: not a tar archive, an image folder or a cifar-10-batches-py folder"
    )


# Folder-per-class layout, packed or not ---------------------------------------------------


def _classify(name: str) -> _Entry | None:
    """Map ".../train/cat/0001.jpg" to its split and label; None for files that are not images."""
    parts = name.split("/")
    if len(parts) < 3 or parts[-1].startswith("."):
        return None
    if not parts[-1].lower().endswith(IMAGE_SUFFIXES):
        return None
    split, cls = parts[-3], parts[-2]
    if split not in SPLITS:
        return None
    if cls not in CLASSES:
        raise DataError(f"{name}: unknown class folder {cls!r}; expected one of {CLASSES}")
    return _Entry(split, CLASSES.index(cls), name)


def _select(
    entries: Iterable[_Entry], limit: int | None, splits: tuple[str, ...] = SPLITS
) -> list[_Entry]:
    """Sort by split, class and file name, keep at most `limit` per class, check that each of
    `splits` has images."""
    ordered = sorted(entries, key=lambda e: (SPLITS.index(e.split), e.label, e.name))
    kept: list[_Entry] = []
    counts: dict[tuple[str, int], int] = {}
    for entry in ordered:
        key = (entry.split, entry.label)
        if limit is not None and counts.get(key, 0) >= limit:
            continue
        counts[key] = counts.get(key, 0) + 1
        kept.append(entry)
    for split in splits:
        if not any(s == split for s, _ in counts):
            raise DataError(f"no {split}/<class>/ images found")
    return kept


def _read_tar(path: Path, limit: int | None, workers: int) -> Cifar10:
    sha = sha256_file(path)
    entries, blobs = _tar_images(path)
    kept = _select(entries, limit)
    return _assemble(kept, [blobs[e.name] for e in kept], sha, "tar", path.name, workers)


def _tar_images(path: Path) -> tuple[list[_Entry], dict[str, bytes]]:
    """Every split/class/image file in a tar (compressed or not), and its bytes by name."""
    blobs: dict[str, bytes] = {}
    entries: list[_Entry] = []
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                entry = _classify(member.name)
                if entry is None:
                    continue
                extracted = archive.extractfile(member)
                if extracted is None:
                    continue
                blobs[entry.name] = extracted.read()
                entries.append(entry)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{path.name}: cannot read the archive ({exc})") from exc
    return entries, blobs


def _read_folder(path: Path, limit: int | None, workers: int) -> Cifar10:
    entries = []
    for file in path.rglob("*"):
        if file.is_file():
            entry = _classify(file.relative_to(path).as_posix())
            if entry is not None:
                entries.append(entry)
    kept = _select(entries, limit)
    blobs = [(path / e.name).read_bytes() for e in kept]
    digest = hashlib.sha256()
    for entry, blob in zip(kept, blobs, strict=True):
        digest.update(entry.name.encode() + b"\0" + hashlib.sha256(blob).digest())
    return _assemble(kept, blobs, digest.hexdigest(), "folder", path.name, workers)


def _assemble(
    kept: list[_Entry], blobs: list[bytes], sha: str, layout: str, source: str, workers: int
) -> Cifar10:
    images, labels = _decode_entries(kept, blobs, workers)
    is_train = torch.tensor([e.split == "train" for e in kept], dtype=torch.bool)
    return Cifar10(
        train_images=images[is_train],
        train_labels=labels[is_train],
        test_images=images[~is_train],
        test_labels=labels[~is_train],
        sha256=sha,
        layout=layout,
        source=source,
    )


def _decode_entries(
    kept: list[_Entry], blobs: list[bytes], workers: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The images as uint8 (N, 3, 32, 32) and their labels as int64 (N,), in `kept`'s order."""
    pixels = _decode_all(blobs, [e.name for e in kept], workers)
    images = torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()
    return images, torch.tensor([e.label for e in kept], dtype=torch.int64)


def _decode_all(blobs: list[bytes], names: list[str], workers: int) -> np.ndarray:
    """Decode every image to (N, 32, 32, 3) uint8 RGB, in order."""
    if workers <= 1 or len(blobs) < POOL_MIN_IMAGES:
        return _decode_chunk(list(zip(blobs, names, strict=True)))
    size = -(-len(blobs) // (workers * 4))
    chunks = [
        list(zip(blobs[i : i + size], names[i : i + size], strict=True))
        for i in range(0, len(blobs), size)
    ]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return np.concatenate(list(pool.map(_decode_chunk, chunks)))


def _decode_chunk(items: list[tuple[bytes, str]]) -> np.ndarray:
    out = np.empty((len(items), SIDE, SIDE, 3), dtype=np.uint8)
    for i, (blob, name) in enumerate(items):
        try:
            # The formats uploads may be, and no other plugin (EPS would run Ghostscript)
            with Image.open(io.BytesIO(blob), formats=ALLOWED_FORMATS) as image:
                width, height = image.size  # from the header: a bomb is never decoded
                if (width, height) != (SIDE, SIDE):
                    raise DataError(f"{name}: image is {width}x{height}, expected 32x32")
                rgb = image.convert("RGB")
        except (DataError, MemoryError):
            raise
        except Exception as exc:  # Pillow's errors: OSError, SyntaxError, DecompressionBombError...
            raise DataError(f"{name}: cannot decode the image ({exc})") from exc
        out[i] = np.asarray(rgb)
    return out


# Official cifar-10-batches-py ------------------------------------------------------------

# The batches are dicts of numpy arrays, lists and bytes; nothing else may be constructed.
# numpy 2 renamed numpy.core to numpy._core; old pickles (the official ones) name numpy.core.
_NUMPY_CORE = "numpy._core" if np.lib.NumpyVersion(np.__version__) >= "2.0.0" else "numpy.core"
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        canonical = module.replace("numpy._core", "numpy.core", 1)
        if (canonical, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(canonical.replace("numpy.core", _NUMPY_CORE, 1), name)


def _read_batches(folder: Path, limit: int | None) -> Cifar10:
    digest = hashlib.sha256()
    splits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split, files in BATCH_FILES.items():
        datas, labels = [], []
        for file_name in files:
            file = folder / file_name
            if not file.is_file():
                raise DataError(f"{folder.name}: {file_name} is missing")
            raw = file.read_bytes()
            digest.update(file_name.encode() + b"\0" + hashlib.sha256(raw).digest())
            data, label = _parse_batch(raw, file_name)
            datas.append(data)
            labels.append(label)
        splits[split] = _limit_arrays(np.concatenate(datas), np.concatenate(labels), limit)
    (train_x, train_y), (test_x, test_y) = splits["train"], splits["test"]
    return Cifar10(
        train_images=torch.from_numpy(train_x.reshape(-1, 3, SIDE, SIDE).copy()),
        train_labels=torch.from_numpy(train_y.astype(np.int64)),
        test_images=torch.from_numpy(test_x.reshape(-1, 3, SIDE, SIDE).copy()),
        test_labels=torch.from_numpy(test_y.astype(np.int64)),
        sha256=digest.hexdigest(),
        layout="batches",
        source=folder.name,
    )


def _parse_batch(raw: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _BatchUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:
        raise DataError(f"{name}: not a CIFAR-10 batch ({exc})") from exc
    if not isinstance(batch, dict):
        raise DataError(f"{name}: not a CIFAR-10 batch (found {type(batch).__name__})")
    data = _get(batch, "data", name)
    labels = _get(batch, "labels", name)
    data = np.asarray(data)
    labels = np.asarray(labels)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * SIDE * SIDE:
        raise DataError(f"{name}: data is {data.dtype} {data.shape}, expected uint8 (N, 3072)")
    if labels.shape != (data.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{name}: expected {data.shape[0]} integer labels")
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASSES)):
        raise DataError(f"{name}: labels outside 0..{len(CLASSES) - 1}")
    return data, labels


def _get(batch: dict[Any, Any], key: str, name: str) -> Any:
    for candidate in (key.encode(), key):
        if candidate in batch:
            return batch[candidate]
    raise DataError(f"{name}: no {key!r} entry")


def _limit_arrays(
    data: np.ndarray, labels: np.ndarray, limit: int | None
) -> tuple[np.ndarray, np.ndarray]:
    if limit is None:
        return data, labels
    keep = np.zeros(len(labels), dtype=bool)
    for label in range(len(CLASSES)):
        keep[np.flatnonzero(labels == label)[:limit]] = True
    return data[keep], labels[keep]
