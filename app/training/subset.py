"""The CIFAR-10 subsets the app ships: 1,000 test and 5,000 training pictures, as JPEGs.

They are the first 100 test and the first 500 training pictures of each class, by file name, of
the JPEG copy of CIFAR-10 (what `load_cifar10(path, limit=...)` keeps), as their original JPEG
bytes in one gzipped tar per split under subsets/ (subsets/README.md says more). `load_subset`
decodes a split on first use and keeps it.

Rebuild them from the full data set (the only thing here that needs it):

    python -m app.training.subset build --data ../shared/data/cifar10-jpeg.tar.gz
    python -m app.training.subset check --data ../shared/data/cifar10-jpeg.tar.gz
"""

import argparse
import functools
import gzip
import io
import sys
import tarfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, NamedTuple

import torch

from app.model import CLASSES
from app.training.data import SPLITS, DataError, _decode_entries, _Entry, _select, _tar_images

Split = Literal["train", "test"]
SUBSETS = Path(__file__).with_name("subsets")
PER_CLASS: dict[str, int] = {"train": 500, "test": 100}


class Subset(NamedTuple):
    """One split: pictures and labels, sorted by class, then by file name."""

    images: torch.Tensor  # uint8 (N, 3, 32, 32), RGB, before normalize()
    labels: torch.Tensor  # int64 (N,), indices into CLASSES


def subset_path(split: str, folder: Path = SUBSETS) -> Path:
    return folder / f"cifar10-{split}.tar.gz"


_LOCK = threading.Lock()  # two threads asking at once decode once


def load_subset(split: Split) -> Subset:
    """The shipped subset of `split`, decoded on the first call and the same tensors after:
    shared, so clone them before changing them in place."""
    if split not in PER_CLASS:
        raise ValueError(f"unknown split {split!r}; expected one of {tuple(PER_CLASS)}")
    with _LOCK:
        return _load(split)


@functools.cache
def _load(split: str) -> Subset:
    return read_subset(subset_path(split), split)


def read_subset(path: Path, split: str) -> Subset:
    """Decode a subset file: a tar of split/<class>/<name>.jpg files of one split."""
    entries, blobs = _tar_images(path)
    others = sorted({e.split for e in entries} - {split})
    if others:
        raise DataError(f"{path.name}: holds {', '.join(others)} images, expected {split} only")
    kept = _select(entries, None, splits=(split,))
    images, labels = _decode_entries(kept, [blobs[e.name] for e in kept], workers=1)
    return Subset(images, labels)


# Building them from the full data set ---------------------------------------------------------


def pick(data: Path) -> dict[str, list[tuple[str, bytes]]]:
    """For each split, its subset's (name, JPEG bytes) in the order the tar keeps them."""
    entries, blobs = _tar_images(data)
    picked: dict[str, list[tuple[str, bytes]]] = {}
    for split in SPLITS:
        kept = [e for e in _select(entries, PER_CLASS[split]) if e.split == split]
        picked[split] = [(_member_name(e), blobs[e.name]) for e in kept]
    return picked


def _member_name(entry: _Entry) -> str:
    """ "cifar10/test/cat/0007.jpg" -> "test/cat/0007.jpg", whatever the top folder."""
    return f"{entry.split}/{CLASSES[entry.label]}/{entry.name.rsplit('/', 1)[-1]}"


def pack(items: Sequence[tuple[str, bytes]]) -> bytes:
    """A gzipped tar of the files, the same bytes for the same files: no dates, owners or names
    that depend on when or where it was built (gzip's bytes may differ between zlib versions;
    what the tar holds does not)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, blob in items:
            info = tarfile.TarInfo(name)  # mtime 0, mode 0o644, uid and gid 0, no owner names
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)


def unpack(path: Path) -> list[tuple[str, bytes]]:
    """What a subset file holds, as (name, bytes), in its order."""
    with tarfile.open(path, "r:gz") as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar if m.isfile()]  # type: ignore[union-attr]


def build(data: Path, out: Path = SUBSETS) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for split, items in pick(data).items():
        path = subset_path(split, out)
        path.write_bytes(pack(items))
        written[split] = path
    return written


def check(data: Path, folder: Path = SUBSETS) -> list[str]:
    """What differs between the files in `folder` and a rebuild from `data`; [] when nothing."""
    problems = []
    for split, items in pick(data).items():
        path = subset_path(split, folder)
        if not path.is_file():
            problems.append(f"{path.name} is missing")
        elif unpack(path) != items:
            problems.append(f"{path.name} differs from a rebuild")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.training.subset",
        description="Rebuild (build) or verify (check) the shipped CIFAR-10 subsets.",
    )
    parser.add_argument("command", choices=["build", "check"])
    parser.add_argument("--data", type=Path, required=True, help="the CIFAR-10 JPEG tar.gz")
    parser.add_argument("--out", type=Path, default=SUBSETS, help="folder of the subset files")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            for split, path in build(args.data, args.out).items():
                count = PER_CLASS[split] * len(CLASSES)
                print(f"{path}: {count:,} {split} pictures, {path.stat().st_size:,} bytes")
            return 0
        problems = check(args.data, args.out)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print("the subsets hold exactly what a rebuild gives")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
