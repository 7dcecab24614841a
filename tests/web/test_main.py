"""Building and starting the app: the weights a user points it at, good or bad."""

from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from torch import nn

from app.model import WeightsError
from app.web.app import create_app
from app.web.settings import Settings
from tests.conftest import image_bytes
from tests.training.test_train import TutorialNet


def test_a_tutorial_cifar_net_pth_is_served(tmp_path: Path) -> None:
    torch.manual_seed(3)
    path = tmp_path / "cifar_net.pth"
    torch.save(TutorialNet().state_dict(), path)  # what the tutorial's own script writes
    with TestClient(create_app(Settings(weights=path, device="cpu"))) as client:
        assert client.get("/health").json()["weights"] == str(path)
        files = [("image", ("a.png", image_bytes(), "image/png"))]
        assert client.post("/predict", files=files, data={"label": "cat"}).status_code == 200
        assert client.get("/model").json()["metrics"] is None  # no metrics beside these weights


def test_wrong_weights_stop_the_app_at_start_up(tmp_path: Path) -> None:
    net = TutorialNet()
    net.fc3 = nn.Linear(84, 100)  # a CIFAR-100 head
    path = tmp_path / "cifar100.pth"
    torch.save(net.state_dict(), path)
    app = create_app(Settings(weights=path, device="cpu"))
    with pytest.raises(WeightsError, match=r"fc3\.weight has shape \(100, 84\)"), TestClient(app):
        pass


def test_missing_weights_stop_the_app_at_start_up(tmp_path: Path) -> None:
    app = create_app(Settings(weights=tmp_path / "nowhere.pth", device="cpu"))
    with pytest.raises(WeightsError, match="not found"), TestClient(app):
        pass
