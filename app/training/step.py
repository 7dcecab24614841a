"""The tutorial's five training lines, run on a copy of a Net, with what each line did recorded.

    optimizer.zero_grad()
    outputs = net(inputs)
    loss = criterion(outputs, labels)
    loss.backward()
    optimizer.step()

Pure torch: tensors in, tensors out. The Net handed in is never changed (the lines run on a copy),
so a served Net can be stepped from by every request.
"""

import copy
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.engine.tries import run_call
from app.model import Net


@dataclass
class StepTrace:
    """What the five lines did, `steps` times on one batch. Tensors are on the CPU."""

    losses: Tensor  # (steps + 1,) float64: before the first step, then after each step
    outputs_before: Tensor  # (N, 10) float32: net(inputs) at the first step
    outputs_after: Tensor  # (N, 10) float32: net(inputs) after the last step
    grad_outputs: Tensor  # (N, 10): d loss / d outputs at the first step
    activations: Tensor  # (N, 84): the inputs of fc3 at the first step
    grads: dict[str, Tensor]  # every parameter's .grad at the first step, by state_dict name
    updates: dict[str, Tensor]  # every parameter's total change, after - before


def train_steps(
    net: Net, inputs: Tensor, labels: Tensor, *, lr: float, momentum: float, steps: int
) -> StepTrace:
    """Run the five lines `steps` times on (inputs, labels), on a trainable copy of `net`, on
    the device `net` is on. inputs: (N, 3, 32, 32) normalised; labels: (N,) class indices."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    copied = trainable_copy(net)
    trace = _five_lines(copied, net, inputs, labels, lr=lr, momentum=momentum, steps=steps)
    SPARES.give_back(copied)  # not on an exception: a copy in an unknown state is dropped
    return trace


def _five_lines(
    net: Net, start: Net, inputs: Tensor, labels: Tensor, *, lr: float, momentum: float, steps: int
) -> StepTrace:
    """The five lines on `net`, a trainable copy of `start` (which does not change meanwhile)."""
    device = next(net.parameters()).device
    inputs, labels = inputs.to(device), labels.to(device)
    fc3_inputs: list[Tensor] = []  # filled by the hook on the first forward pass
    hook = net.fc3.register_forward_pre_hook(lambda _, args: fc3_inputs.append(args[0].detach()))

    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    criterion = nn.CrossEntropyLoss()
    losses: list[Tensor] = []
    first: tuple[Tensor, Tensor, dict[str, Tensor]] | None = None
    for _ in range(steps):
        optimizer.zero_grad()
        outputs = net(inputs)  # (N, 10)
        loss = criterion(outputs, labels)
        outputs.retain_grad()  # autograd keeps .grad on leaves only, unless asked
        loss.backward()
        if first is None:
            hook.remove()
            grads = {
                name: p.grad.clone() for name, p in net.named_parameters() if p.grad is not None
            }
            first = (outputs.detach(), outputs.grad, grads)
        optimizer.step()
        losses.append(_loss64(outputs, labels))  # the loss before this step

    with torch.no_grad():
        last_outputs = net(inputs)
    losses.append(_loss64(last_outputs, labels))  # the loss after the last step
    assert first is not None and first[1] is not None  # steps >= 1
    first_outputs, grad_outputs, grads = first
    before = dict(start.named_parameters())
    updates = {name: p.detach() - before[name].detach() for name, p in net.named_parameters()}
    return StepTrace(
        losses=torch.stack(losses).cpu(),
        outputs_before=first_outputs.cpu(),
        outputs_after=last_outputs.cpu(),
        grad_outputs=grad_outputs.cpu(),
        activations=fc3_inputs[0].cpu(),
        grads={name: g.cpu() for name, g in grads.items()},
        updates={name: u.cpu() for name, u in updates.items()},
    )


def trainable_copy(net: Net) -> Net:
    """A copy of `net` that autograd tracks, in training mode (as the tutorial's net is): a
    spare one (see SpareCopies) with `net`'s parameters copied in, else a deep copy."""
    spare = SPARES.take(net)
    if spare is not None:
        return spare  # made here before, and kept as it was made
    copied = copy.deepcopy(net)
    copied.requires_grad_(True)
    return copied.train()


Layout = tuple[type, tuple[tuple[torch.Size, torch.dtype, tuple[int, ...], torch.device], ...]]


class SpareCopies:
    """Copies of Nets that steps have finished with, kept to be loaded with the next one's
    parameters: copy.deepcopy of a Net is some 0.4 ms of Python (0.6 ms inside a request, a
    tenth of a /step on 4 pictures), copying its 62,006 parameters into a spare 0.02 ms.

    A spare is used only for a Net of the same class whose parameters have the same shapes,
    dtypes, strides and device, and has every parameter overwritten: it is then the copy that
    copy.deepcopy would make (the Net has no buffers; each step makes its own optimizer).
    At most `keep` per layout; take and give_back are safe from any thread (list.pop and
    list.append are atomic)."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._spares: dict[Layout, list[Net]] = {}

    def take(self, net: Net) -> Net | None:
        """A spare with `net`'s parameters copied in, or None when there is none."""
        try:
            spare = self._spares.get(_layout(net), []).pop()
        except IndexError:
            return None
        with torch.no_grad():  # one call for all: ten copy_ calls cost 5 times as long
            torch._foreach_copy_(list(spare.parameters()), list(net.parameters()))
        return spare

    def give_back(self, net: Net) -> None:
        """Keep a copy that trainable_copy made, once its step is done."""
        for parameter in net.parameters():
            parameter.grad = None
        spares = self._spares.setdefault(_layout(net), [])
        if len(spares) < self.keep:
            spares.append(net)


def _layout(net: Net) -> Layout:
    return type(net), tuple((p.shape, p.dtype, p.stride(), p.device) for p in net.parameters())


SPARES = SpareCopies(keep=4)


def _loss64(outputs: Tensor, labels: Tensor) -> Tensor:
    """The batch loss of float32 outputs, computed in float64 as every stage of the engine is
    (the float32 loss the loop backpropagates agrees to about 7 digits)."""
    return F.cross_entropy(outputs.detach().double(), labels)


def norms(tensors: dict[str, Tensor]) -> dict[str, float]:
    """The L2 norm of each tensor, as a Python float (inf or nan when it diverged)."""
    return {name: float(torch.linalg.vector_norm(t.double())) for name, t in tensors.items()}


def criterion_mistake(outputs: Tensor, labels: Tensor) -> str:
    """What this torch says to `loss = nn.CrossEntropyLoss(outputs, labels); loss.backward()`:
    the class called where its instance should be (app.engine.tries' "class_called").

    The tensors land in the constructor's `weight` and `size_average` (torch/nn/modules/loss.py),
    where only their kinds count: `size_average` is asked for its truth value
    (torch/nn/_reduction.py, legacy_get_string), which a tensor of more than one value refuses
    whatever the values. So the answer is computed once per shape and dtype, on zeros (a
    Python exception and a module built and thrown away: 0.06 ms a step, 0.17 ms in a request)."""
    return _mistake(outputs.shape, outputs.dtype, labels.shape, labels.dtype)


@lru_cache(maxsize=256)  # a shape per batch size: 64 at most in /step
def _mistake(
    shape: torch.Size, dtype: torch.dtype, label_shape: torch.Size, label_dtype: torch.dtype
) -> str:
    zeros = torch.zeros(shape, dtype=dtype), torch.zeros(label_shape, dtype=label_dtype)
    tried = run_call("class_called", *zeros)
    return "no error" if tried.ok else tried.error_text
