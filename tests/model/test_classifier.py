"""Classifier.logits against the tutorial's Net run here on a channels-first batch, bit for bit.

The app's batches are channels first in memory, as the tutorial's: on a channels-last batch the
Net's convolutions give the same logits on some CPUs (AVX-512) and not on others (AVX2), so the
layout is checked too, which fails on any machine."""

from pathlib import Path

import pytest
import torch

from app.model.classifier import Classifier
from app.model.images import Picture, to_batch
from app.model.inputs import normalize
from app.training.subset import load_subset
from tests.training.test_train import TutorialNet


def tutorial(weights: Path) -> TutorialNet:
    net = TutorialNet()
    net.load_state_dict(torch.load(weights, weights_only=True))
    return net.eval()


def decoded(images: torch.Tensor) -> list[Picture]:
    """Pictures as decode makes them: (3, 32, 32) views of rows of RGB pixels."""
    rows = images.permute(0, 2, 3, 1).contiguous()  # (N, 32, 32, 3), as Pillow writes them
    return [
        Picture(f"{k}.png", "PNG", (32, 32), hwc.permute(2, 0, 1)) for k, hwc in enumerate(rows)
    ]


@pytest.mark.parametrize("count", [1, 3, 64])
def test_logits_are_the_tutorial_nets_bit_for_bit(random_weights: Path, count: int) -> None:
    images = load_subset("test").images[:count]  # uint8 (N, 3, 32, 32), channels first
    batch = to_batch(decoded(images))
    assert batch.is_contiguous()  # channels first, not channels last
    plain = normalize(images)
    assert torch.equal(batch, plain)
    with torch.no_grad():
        expected = tutorial(random_weights)(plain)
    assert torch.equal(Classifier.load(random_weights, "cpu").logits(batch), expected)


def test_the_served_net_is_channels_first(random_weights: Path) -> None:
    """Its weights as torch.load gives them, whether logits ran or not (/step copies it)."""
    classifier = Classifier.load(random_weights, "cpu")
    classifier.logits(to_batch(decoded(load_subset("test").images[:2])))
    for name, parameter in classifier.net.named_parameters():
        assert parameter.is_contiguous(), name
    assert not classifier.net.training
