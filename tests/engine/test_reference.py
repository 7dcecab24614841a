"""reference.py (the maths in 25 lines) gives the engine's numbers on every plain case: class
indices with no weights, no label smoothing and no target equal to ignore_index, to rounding.

The reference takes the textbook's steps (shift by the max, exp, sum, log, gather, softmax -
one_hot, torch.sum); the engine takes PyTorch's kernels' (log_softmax and softmax in one kernel
each, nll_loss's cascade of partial sums), so that it is PyTorch's bit for bit on every CPU
(tests/engine/test_exact.py). Where PyTorch's kernels run AVX-512 the two were the same bit for
bit; where they run AVX2 they round differently. How far apart they may be:
- the loss: 4 * 2**-52 times the largest |log-probability| of the input (times N for 'sum'),
  as sums of N terms of that size round; over 2,880 cases of these shapes and scales on an AVX2
  CPU the largest difference measured was 1.71 of these units;
- the gradient: 4 * 2**-52 (over N for 'mean'), a few ulps of the largest size an entry can
  have; the largest measured was 2.25. (The engine multiplies softmax by 1/N and subtracts 1/N
  at the target class; the reference divides softmax - one_hot by N, as a textbook writes it.)
"""

import math
import zlib

import pytest
import torch
import torch.nn.functional as F

from app.engine import cross_entropy_stages
from app.engine.reference import cross_entropy

F64 = torch.float64
SHAPES = [(10,), (1, 10), (8, 10), (64, 3), (0, 4), (4, 10, 3), (2, 1, 5)]


def case(shape, scale, seed):
    gen = torch.Generator().manual_seed(zlib.crc32(repr((shape, scale, seed)).encode()))
    cd = 0 if len(shape) == 1 else 1
    z = torch.randn(shape, generator=gen, dtype=F64) * scale
    t = torch.randint(0, shape[cd], shape[:cd] + shape[cd + 1 :], generator=gen)
    return z, t


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("scale", [0.01, 1.0, 30.0, 1e300])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("seed", range(3))
def test_reference_equals_the_engine(shape, scale, reduction, seed):
    z, t = case(shape, scale, seed)
    loss, grad = cross_entropy(z, t, reduction)
    stages = cross_entropy_stages(z, t, reduction=reduction)
    positions = t.numel()
    cd = 0 if z.dim() == 1 else 1
    largest = float((z.amax(cd) - z.amin(cd)).max()) + math.log(z.shape[cd]) if z.numel() else 0
    loss_tol = 4 * 2**-52 * largest * (positions if reduction == "sum" else 1)
    torch.testing.assert_close(stages.loss, loss, rtol=0, atol=loss_tol, equal_nan=True)
    grad_tol = 4 * 2**-52 / (max(positions, 1) if reduction == "mean" else 1)
    assert stages.grad is not None
    torch.testing.assert_close(stages.grad, grad, rtol=0, atol=grad_tol)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(10,), (8, 10), (4, 10, 3)], ids=str)
def test_reference_matches_pytorch(shape, reduction):
    """The reference on its own against F.cross_entropy and autograd."""
    z, t = case(shape, 3.0, 0)
    loss, grad = cross_entropy(z, t, reduction)
    leaf = z.clone().requires_grad_()
    expected = F.cross_entropy(leaf, t, reduction=reduction)
    expected.sum().backward()
    torch.testing.assert_close(loss, expected.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, leaf.grad, rtol=1e-12, atol=1e-12)


def test_the_reference_averages_by_default():
    z, t = case((8, 10), 3.0, 0)
    assert torch.equal(cross_entropy(z, t)[0], cross_entropy(z, t, "mean")[0])
    assert torch.equal(cross_entropy(z, t)[1], cross_entropy(z, t, "sum")[1] / 8)
