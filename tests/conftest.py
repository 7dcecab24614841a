"""Shared fixtures: an app with small random weights, so API tests never depend on training."""

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from app.model import Net
from app.web.app import create_app
from app.web.settings import Settings


@pytest.fixture(scope="session")
def random_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "cifar_net.pth"
    torch.save(Net().state_dict(), path)
    return path


@pytest.fixture(scope="session")
def settings(random_weights: Path) -> Settings:
    return Settings(weights=random_weights, device="cpu")


def build_app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(build_app(settings)) as c:
        yield c


def image_bytes(
    color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (32, 32), fmt: str = "PNG"
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()
