"""Test accuracy of the served Net, measured through POST /predict on CIFAR-10's 10,000 test JPEGs.

    python -m bench.accuracy [--data ../shared/data/cifar10-jpeg.tar.gz] [--url http://127.0.0.1:8000]

Without --url the app runs in process with the weights APP_WEIGHTS names (default: shipped).
"""

import argparse
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from app.model import CLASSES

BATCH = 64


def test_images(tar_path: Path) -> Iterator[tuple[str, bytes, str]]:
    """(file name, JPEG bytes, class name) for every test/<class>/*.jpg in the archive."""
    with tarfile.open(tar_path, "r:gz") as tar:
        for member in tar:
            parts = Path(member.name).parts
            if member.isfile() and "test" in parts[:-2] and parts[-2] in CLASSES:
                data = tar.extractfile(member)
                assert data is not None
                yield parts[-1], data.read(), parts[-2]


def measure(client: httpx.Client | TestClient, tar_path: Path) -> dict[str, float]:
    correct = {name: 0 for name in CLASSES}
    seen = {name: 0 for name in CLASSES}
    batch: list[tuple[str, bytes, str]] = []

    def send() -> None:
        files = [("image", (name, data, "image/jpeg")) for name, data, _ in batch]
        labels = [label for _, _, label in batch]
        r = client.post("/predict", files=files, data={"label": labels, "reduction": "none"})
        r.raise_for_status()
        for image, label in zip(r.json()["images"], labels, strict=True):
            seen[label] += 1
            correct[label] += image["predicted_class"] == label
        batch.clear()

    for item in test_images(tar_path):
        batch.append(item)
        if len(batch) == BATCH:
            send()
    if batch:
        send()
    total = sum(seen.values())
    result = {"images": float(total), "accuracy": sum(correct.values()) / total}
    result.update({name: correct[name] / seen[name] for name in CLASSES if seen[name]})
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/cifar10-jpeg.tar.gz"))
    parser.add_argument("--url", help="a running server; default: the app in process")
    args = parser.parse_args()
    if args.url:
        with httpx.Client(base_url=args.url, timeout=60) as client:
            result = measure(client, args.data)
    else:
        from app.main import app

        with TestClient(app) as client:
            result = measure(client, args.data)
    print(
        f"{int(result['images'])} test images, accuracy through /predict: {result['accuracy']:.2%}"
    )
    for name in CLASSES:
        print(f"  {name:<10} {result[name]:.1%}")


if __name__ == "__main__":
    main()
