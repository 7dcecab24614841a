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
    device = next(net.parameters()).device
    net = trainable_copy(net)
    inputs, labels = inputs.to(device), labels.to(device)
    start = {name: p.detach().clone() for name, p in net.named_parameters()}
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
    updates = {name: p.detach() - start[name] for name, p in net.named_parameters()}
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
    """A copy of `net` that autograd tracks, in training mode (as the tutorial's net is)."""
    copied = copy.deepcopy(net)
    copied.requires_grad_(True)
    return copied.train()


def _loss64(outputs: Tensor, labels: Tensor) -> Tensor:
    """The batch loss of float32 outputs, computed in float64 as every stage of the engine is
    (the float32 loss the loop backpropagates agrees to about 7 digits)."""
    return F.cross_entropy(outputs.detach().double(), labels)


def norms(tensors: dict[str, Tensor]) -> dict[str, float]:
    """The L2 norm of each tensor, as a Python float (inf or nan when it diverged)."""
    return {name: float(torch.linalg.vector_norm(t.double())) for name, t in tensors.items()}


def criterion_mistake(outputs: Tensor, labels: Tensor) -> str:
    """What this torch says to `loss = nn.CrossEntropyLoss(outputs, labels); loss.backward()`:
    the class called where its instance should be (app.engine.tries' "class_called")."""
    tried = run_call("class_called", outputs.detach(), labels)
    return "no error" if tried.ok else tried.error_text
