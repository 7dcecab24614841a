"""The five training lines on a copy of a Net, against the tutorial's loop run here in plain
PyTorch on the tutorial's own Net class."""

import copy
import math
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from app.model import CLASSES, Net
from app.model.images import load_picture, to_batch
from app.training import step
from app.training.live import fresh_net
from app.training.step import criterion_mistake, norms, train_steps
from tests.training.test_train import TutorialNet

GALLERY = Path(__file__).resolve().parents[2] / "static" / "gallery"


@pytest.fixture(scope="module")
def gallery() -> tuple[torch.Tensor, torch.Tensor]:
    """The 20 bundled CIFAR-10 pictures, normalised, and their classes."""
    paths = sorted(GALLERY.glob("*.jpg"))
    pictures = [load_picture(p.read_bytes(), p.name, max_pixels=10**6) for p in paths]
    labels = [CLASSES.index(p.name.split("-")[0]) for p in paths]
    return to_batch(pictures), torch.tensor(labels)


def served_net(seed: int = 1) -> Net:
    """A Net as the app serves one: random weights, eval mode, gradients off."""
    torch.manual_seed(seed)
    net = Net()
    net.eval()
    return net.requires_grad_(False)


def tutorial_loop(net: nn.Module, inputs, labels, lr: float, momentum: float, steps: int) -> dict:
    """The tutorial's loop by hand on `net` (changed in place), `steps` times on one batch: the
    losses (before each step, then after the last), the first step's outputs and gradients,
    the outputs after the last step and each parameter's total change."""
    start = {k: v.clone() for k, v in net.state_dict().items()}
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    criterion = nn.CrossEntropyLoss()
    losses: list[float] = []
    first: dict = {}
    for _ in range(steps):
        optimizer.zero_grad()
        outputs = net(inputs)
        outputs.retain_grad()
        loss = criterion(outputs, labels)
        loss.backward()
        if not first:
            first = {
                "outputs": outputs.detach().clone(),
                "grad_logits": outputs.grad,
                "grads": {
                    n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None
                },
            }
        optimizer.step()
        losses.append(loss.item())
    with torch.no_grad():
        after = net(inputs)
    losses.append(criterion(after, labels).item())
    updates = {k: v - start[k] for k, v in net.state_dict().items()}
    return {**first, "losses": losses, "after": after, "updates": updates}


@pytest.mark.parametrize("steps", [1, 5])
@pytest.mark.parametrize(("lr", "momentum"), [(0.001, 0.9), (0.01, 0.9), (0.01, 0.0)])
def test_five_lines_match_the_tutorials_loop(gallery, steps, lr, momentum) -> None:
    inputs, labels = gallery
    net = served_net()
    trace = train_steps(net, inputs, labels, lr=lr, momentum=momentum, steps=steps)
    tutorial = TutorialNet()
    tutorial.load_state_dict(net.state_dict())
    want = tutorial_loop(tutorial, inputs, labels, lr, momentum, steps)
    assert trace.losses.tolist() == pytest.approx(want["losses"], rel=1e-5)
    assert torch.allclose(trace.grad_outputs, want["grad_logits"], atol=1e-7)
    assert list(trace.grads) == list(net.state_dict())  # every parameter, state_dict names
    for name, grad in want["grads"].items():
        assert torch.allclose(trace.grads[name], grad, rtol=1e-4, atol=1e-7), name
        updated = want["updates"][name]
        assert torch.allclose(trace.updates[name], updated, rtol=1e-3, atol=1e-7), name
    expected = {name: grad.norm().item() for name, grad in want["grads"].items()}
    assert norms(trace.grads) == pytest.approx(expected, rel=1e-5)


def test_the_first_update_is_lr_times_the_gradient(gallery) -> None:
    """SGD's momentum buffer starts as the gradient itself (torch/optim/sgd.py), so one step
    moves every parameter by -lr x its gradient, whatever the momentum."""
    inputs, labels = gallery
    trace = train_steps(served_net(), inputs, labels, lr=0.01, momentum=0.9, steps=1)
    for name, grad in trace.grads.items():
        assert torch.allclose(trace.updates[name], -0.01 * grad, atol=1e-8), name


def test_the_net_handed_in_is_not_changed(gallery) -> None:
    inputs, labels = gallery
    net = served_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    trace = train_steps(net, inputs, labels, lr=0.1, momentum=0.9, steps=3)
    assert all(u.abs().max() > 0 for u in trace.updates.values())  # the copy did move
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    assert not any(p.requires_grad for p in net.parameters()) and not net.training
    assert all(p.grad is None for p in net.parameters())


def test_a_spare_copy_steps_as_a_deep_copy_does(gallery, monkeypatch) -> None:
    """A step runs on a spare copy (one an earlier step finished with, here one that diverged to
    inf and NaN) loaded with the next Net's parameters: bit for bit what the tutorial's loop
    gives on a deep copy of that Net."""
    inputs, labels = gallery
    spares = step.SpareCopies(keep=1)
    monkeypatch.setattr(step, "SPARES", spares)
    train_steps(served_net(2), inputs, labels, lr=1000.0, momentum=0.9, steps=10)
    [spare] = spares._spares[step._layout(served_net())]
    assert not all(p.isfinite().all() for p in spare.parameters())
    net = served_net(3)
    trace = train_steps(net, inputs, labels, lr=0.01, momentum=0.9, steps=3)
    assert spares._spares[step._layout(net)] == [spare]  # taken, and given back
    want = tutorial_loop(
        copy.deepcopy(net).requires_grad_(True).train(), inputs, labels, 0.01, 0.9, 3
    )
    assert torch.equal(trace.outputs_before, want["outputs"])
    assert torch.equal(trace.grad_outputs, want["grad_logits"])
    assert all(torch.equal(trace.grads[n], g) for n, g in want["grads"].items())
    assert all(torch.equal(trace.updates[n], u) for n, u in want["updates"].items())
    assert torch.equal(trace.outputs_after, want["after"])


def test_spares_are_kept_by_layout_and_up_to_their_number(gallery, monkeypatch) -> None:
    inputs, labels = gallery
    spares = step.SpareCopies(keep=2)
    monkeypatch.setattr(step, "SPARES", spares)
    doubled = served_net().double()
    for _ in range(3):
        copies = [step.trainable_copy(served_net()) for _ in range(3)] + [
            step.trainable_copy(doubled)
        ]
        for copied in copies:
            spares.give_back(copied)
    assert [len(kept) for kept in spares._spares.values()] == [2, 1]
    assert spares.take(served_net()) is not None
    trace = train_steps(doubled, inputs.double(), labels, lr=0.01, momentum=0.9, steps=1)
    assert trace.grads["fc3.bias"].dtype == torch.float64  # a float64 spare, not a float32 one
    assert all(
        p.grad is None for kept in spares._spares.values() for n in kept for p in n.parameters()
    )


def test_a_step_that_raises_leaves_no_spare(gallery, monkeypatch) -> None:
    inputs, labels = gallery
    spares = step.SpareCopies(keep=4)
    monkeypatch.setattr(step, "SPARES", spares)
    with pytest.raises(RuntimeError):
        train_steps(served_net(), inputs[:, :2], labels, lr=0.01, momentum=0.9, steps=1)
    assert not any(spares._spares.values())


def test_fc3_gradients_are_built_from_the_outputs_gradient_and_the_activations(gallery) -> None:
    inputs, labels = gallery
    net = served_net()
    trace = train_steps(net, inputs, labels, lr=0.01, momentum=0.9, steps=3)  # the first step's
    n = len(labels)
    with torch.no_grad():  # the fc3 inputs, by the tutorial's forward written out
        x = net.pool(F.relu(net.conv1(inputs)))
        x = net.pool(F.relu(net.conv2(x)))
        x = F.relu(net.fc1(torch.flatten(x, 1)))
        activations = F.relu(net.fc2(x))
        outputs = net.fc3(activations)
    assert torch.allclose(trace.activations, activations, atol=1e-6)
    assert torch.equal(trace.outputs_before, outputs)
    one_hot = F.one_hot(labels, 10).float()
    assert torch.allclose(trace.grad_outputs, (outputs.softmax(1) - one_hot) / n, atol=1e-7)
    assert torch.allclose(trace.grads["fc3.bias"], trace.grad_outputs.sum(0), atol=1e-7)
    weight_grad = trace.grad_outputs.T @ trace.activations  # (10, N) @ (N, 84)
    assert torch.allclose(trace.grads["fc3.weight"], weight_grad, atol=1e-6)


def test_a_fresh_nets_first_loss_is_about_ln_10(gallery) -> None:
    """A fresh Net's outputs are small, its softmax nearly uniform: the loss of a guess among 10."""
    inputs, labels = gallery
    for seed in range(3):
        trace = train_steps(
            fresh_net(seed, torch.device("cpu")), inputs, labels, lr=0.001, momentum=0.9, steps=1
        )
        assert abs(trace.losses[0].item() - math.log(10)) < 0.05
    trained = train_steps(served_net(), inputs, labels, lr=0.001, momentum=0.9, steps=1)
    assert trained.losses.shape == (2,)


def test_many_steps_on_one_batch_overfit_it(gallery) -> None:
    inputs, labels = gallery
    trace = train_steps(
        fresh_net(0, torch.device("cpu")), inputs[:4], labels[:4], lr=0.01, momentum=0.9, steps=60
    )
    assert trace.losses.shape == (61,)
    assert trace.losses[-1] < 0.1 < 2.0 < trace.losses[0]


def test_a_huge_learning_rate_diverges_without_an_error(gallery) -> None:
    inputs, labels = gallery
    trace = train_steps(served_net(), inputs, labels, lr=1000.0, momentum=0.9, steps=10)
    assert math.isfinite(trace.losses[0]) and not torch.isfinite(trace.losses[-1])


def test_the_criterion_mistake_is_what_this_torch_raises() -> None:
    outputs, labels = torch.randn(4, 10), torch.tensor([0, 1, 2, 3])
    with pytest.raises(RuntimeError) as raised:
        nn.CrossEntropyLoss(outputs, labels)
    assert criterion_mistake(outputs, labels) == f"RuntimeError: {raised.value}"
    assert "ambiguous" in criterion_mistake(outputs, labels)
    # one label: the class is built, with outputs as its weight, and has no backward()
    assert criterion_mistake(outputs[:1], labels[:1]) == (
        "AttributeError: 'CrossEntropyLoss' object has no attribute 'backward'"
    )


def real_mistake(outputs: torch.Tensor, labels: torch.Tensor) -> str:
    """The mistake made here, on these very tensors."""
    try:
        loss = nn.CrossEntropyLoss(outputs, labels)
        loss.backward()  # type: ignore[operator]
    except Exception as e:  # what this torch raises, whatever it is
        return f"{type(e).__name__}: {e}"
    return "no error"


@pytest.mark.parametrize("count", [1, 2, 4, 64])
@pytest.mark.parametrize("label", [0, 3, 9])
def test_the_criterion_mistake_is_the_same_for_any_values(count: int, label: int) -> None:
    """Computed once per shape and dtype: the values must not matter, here on real tensors
    (one label of 0 reads as False where it is asked for its truth value, 3 as True)."""
    generator = torch.Generator().manual_seed(count * 10 + label)
    for outputs in (torch.randn(count, 10, generator=generator), torch.zeros(count, 10)):
        labels = torch.full((count,), label)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the size_average deprecation notice
            assert criterion_mistake(outputs, labels) == real_mistake(outputs, labels)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_steps_on_the_gpu_match_the_cpu(gallery) -> None:
    inputs, labels = gallery
    net = served_net()
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        cpu = train_steps(net, inputs, labels, lr=0.01, momentum=0.9, steps=3)
        gpu = train_steps(net.cuda(), inputs, labels, lr=0.01, momentum=0.9, steps=3)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
    assert next(net.parameters()).is_cuda and gpu.losses.device.type == "cpu"
    assert torch.allclose(gpu.losses, cpu.losses, rtol=1e-4)
    assert torch.allclose(gpu.grad_outputs, cpu.grad_outputs, atol=1e-6)
    assert all(torch.allclose(gpu.grads[k], g, rtol=1e-3, atol=1e-6) for k, g in cpu.grads.items())
