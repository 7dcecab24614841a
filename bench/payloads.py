"""Request bodies for the load runs: /loss JSON and /predict multipart of real CIFAR-10 JPEGs."""

import io
import os
import random
import tarfile
from dataclasses import dataclass
from pathlib import Path

import orjson
from PIL import Image

from app.model import CLASSES

ROOT = Path(__file__).resolve().parent.parent
CIFAR_TARS = tuple(
    Path(p)
    for p in (
        os.environ.get("BENCH_DATA", ""),
        ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz",
        ROOT / "shared" / "data" / "cifar10-jpeg.tar.gz",
    )
    if p
)
GALLERY = ROOT / "static" / "gallery"
BOUNDARY = "----cross-entropy-explainer-bench"


@dataclass(frozen=True)
class Picture:
    filename: str
    data: bytes
    label: str


@dataclass(frozen=True)
class Body:
    data: bytes
    content_type: str


def loss_body(rows: int, classes: int = 10, fields: list[str] | None = None, seed: int = 0) -> Body:
    """A /loss request: (rows, classes) logits with 6 decimals and class-index targets."""
    rng = random.Random(seed)
    logits = [[round(rng.gauss(0.0, 2.0), 6) for _ in range(classes)] for _ in range(rows)]
    target = [rng.randrange(classes) for _ in range(rows)]
    payload: dict[str, object] = {"logits": logits, "target": target}
    if fields is not None:
        payload["fields"] = fields
    return Body(orjson.dumps(payload), "application/json")


def _from_tar(path: Path, count: int) -> list[Picture]:
    """The first test-set JPEGs of each class in turn (airplane, automobile, ...): `count`."""
    per_class = -(-count // len(CLASSES))
    found: dict[str, list[Picture]] = {name: [] for name in CLASSES}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:
            parts = member.name.split("/")
            if len(parts) != 3 or parts[0] != "test" or not member.isfile():
                continue
            label = parts[1]
            if label not in found or len(found[label]) >= per_class:
                continue
            stream = tar.extractfile(member)
            assert stream is not None
            found[label].append(Picture(f"{label}-{parts[2]}", stream.read(), label))
            if all(len(v) >= per_class for v in found.values()):
                break
    return _interleave(found, count)


def _from_gallery(folder: Path, count: int) -> list[Picture]:
    found: dict[str, list[Picture]] = {name: [] for name in CLASSES}
    for path in sorted(folder.glob("*.jpg")):
        label = path.name.split("-")[0]
        if label in found:
            found[label].append(Picture(path.name, path.read_bytes(), label))
    pictures = _interleave(found, sum(len(v) for v in found.values()))
    return [pictures[i % len(pictures)] for i in range(count)] if pictures else []


def synthesized_jpegs(count: int) -> list[Picture]:
    rng = random.Random(0)
    pictures = []
    for i in range(count):
        noise = bytes(rng.randrange(256) for _ in range(32 * 32 * 3))
        buffer = io.BytesIO()
        Image.frombytes("RGB", (32, 32), noise).save(buffer, format="JPEG", quality=90)
        label = CLASSES[i % len(CLASSES)]
        pictures.append(Picture(f"synthetic-{i}.jpg", buffer.getvalue(), label))
    return pictures


def _interleave(found: dict[str, list[Picture]], count: int) -> list[Picture]:
    out: list[Picture] = []
    depth = max((len(v) for v in found.values()), default=0)
    for i in range(depth):
        out.extend(v[i] for v in found.values() if i < len(v))
    return out[:count]


def cifar_jpegs(count: int) -> tuple[list[Picture], str]:
    """`count` CIFAR-10 JPEGs with their labels, and where they came from.

    The test set of the shared CIFAR-10 archive when present (BENCH_DATA names another), else
    the bundled gallery, else synthesized 32x32 JPEGs.
    """
    for path in CIFAR_TARS:
        if path.is_file():
            pictures = _from_tar(path, count)
            if len(pictures) == count:
                return pictures, f"CIFAR-10 test set ({path.name})"
    pictures = _from_gallery(GALLERY, count)
    if pictures:
        return pictures, f"bundled gallery ({GALLERY.relative_to(ROOT)})"
    return synthesized_jpegs(count), "synthesized 32x32 JPEGs"


def multipart_body(pictures: list[Picture], labels: bool = True) -> Body:
    """multipart/form-data with one `image` part per picture and, optionally, one `label` each."""
    out = io.BytesIO()
    for picture in pictures:
        out.write(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; '
            f'filename="{picture.filename}"\r\nContent-Type: image/jpeg\r\n\r\n'.encode()
        )
        out.write(picture.data)
        out.write(b"\r\n")
    if labels:
        for picture in pictures:
            out.write(
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="label"\r\n\r\n'
                f"{picture.label}\r\n".encode()
            )
    out.write(f"--{BOUNDARY}--\r\n".encode())
    return Body(out.getvalue(), f"multipart/form-data; boundary={BOUNDARY}")
