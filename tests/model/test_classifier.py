"""Classifier.logits against the tutorial's Net run here on a channels-first batch, bit for bit."""

import gc
from pathlib import Path

import pytest
import torch

from app.model import classifier as module
from app.model.classifier import Classifier, channels_last
from app.model.images import Picture, to_batch
from app.model.inputs import normalize
from app.training.subset import load_subset
from tests.training.test_train import TutorialNet


def tutorial(weights: Path) -> TutorialNet:
    net = TutorialNet()
    net.load_state_dict(torch.load(weights, weights_only=True))
    return net.eval()


@pytest.mark.parametrize("count", [1, 3, 64])
def test_logits_are_the_tutorial_nets_bit_for_bit(random_weights: Path, count: int) -> None:
    images = load_subset("test").images[:count]  # uint8 (N, 3, 32, 32), channels first
    classifier = Classifier.load(random_weights, "cpu")
    # to_batch's layout: each picture's rows of RGB pixels, channels last in memory
    batch = normalize(images.permute(0, 2, 3, 1).contiguous()).permute(0, 3, 1, 2)
    assert batch.is_contiguous(memory_format=torch.channels_last)
    plain = normalize(images)
    assert plain.is_contiguous()
    with torch.no_grad():
        expected = tutorial(random_weights)(plain)
    assert torch.equal(classifier.logits(batch), expected)
    assert torch.equal(classifier.logits(plain), expected)


def test_logits_of_decoded_pictures(random_weights: Path) -> None:
    """Through the app's own batch of decoded pictures (to_batch), as /predict runs it."""
    images = load_subset("test").images[:5]
    pictures = [Picture(f"{k}.png", "PNG", (32, 32), image) for k, image in enumerate(images)]
    with torch.no_grad():
        expected = tutorial(random_weights)(normalize(images))
    logits = Classifier.load(random_weights, "cpu").logits(to_batch(pictures))
    assert torch.equal(logits, expected)


def test_the_served_net_is_left_channels_first(random_weights: Path) -> None:
    """The copy runs; the Net itself, which /step copies and trains, keeps its layout."""
    classifier = Classifier.load(random_weights, "cpu")
    before = {name: p.clone() for name, p in classifier.net.named_parameters()}
    twin = channels_last(classifier.net)
    assert twin is not classifier.net
    assert twin is channels_last(classifier.net)  # made once
    for name, parameter in classifier.net.named_parameters():
        assert parameter.is_contiguous(), name
        assert torch.equal(parameter, before[name]), name
    for name, parameter in twin.named_parameters():
        assert torch.equal(parameter, before[name]), name
        if parameter.dim() == 4:
            assert parameter.is_contiguous(memory_format=torch.channels_last), name
            assert not parameter.is_contiguous(), name
    assert not twin.training and not any(p.requires_grad for p in twin.parameters())


def test_a_twin_goes_with_its_net(random_weights: Path) -> None:
    classifier = Classifier.load(random_weights, "cpu")
    channels_last(classifier.net)
    held = len(module._TWINS)
    del classifier
    gc.collect()
    assert len(module._TWINS) == held - 1


def test_logits_run_the_twin(random_weights: Path) -> None:
    """On the CPU the twin computes the logits (made on the first call), not the Net."""
    classifier = Classifier.load(random_weights, "cpu")
    assert classifier.net not in module._TWINS
    batch = to_batch([Picture("0.png", "PNG", (32, 32), load_subset("test").images[0])])
    classifier.logits(batch)
    assert classifier.net in module._TWINS
    assert module._TWINS[classifier.net] is channels_last(classifier.net)
