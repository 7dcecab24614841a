"""The catalogue of PyTorch calls: the code of each call, run here as text, does what it does."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from app.engine.tries import CALLS, SETUP, run_call

LOGITS = [
    [-1.2, -2.1, 0.6, 2.3, -0.5, 1.4, 0.3, -0.8, -0.3, -1.6],
    [0.5, 1.0, -1.0, 0.0, 2.0, 0.1, 0.2, 0.3, 0.4, 0.6],
]
OPTIONS = [
    {"weight": None, "ignore_index": -100, "reduction": "mean", "label_smoothing": 0.0},
    {
        "weight": torch.linspace(0.5, 2.0, 10, dtype=torch.float64),
        "ignore_index": -100,
        "reduction": "mean",
        "label_smoothing": 0.1,
    },
    {"weight": None, "ignore_index": 8, "reduction": "none", "label_smoothing": 0.0},
]  # fmt: skip


def run_text(code: str, logits: list[list[float]], target: list[int], options: dict) -> object:
    """SETUP and the call's code, run as text (our own fixed lines: a test may exec them), the
    way a learner would: the loss, or the exception it raised."""
    namespace = {"torch": torch, "nn": nn, "F": F, "logits": logits, "target": target, **options}
    try:
        exec("\n".join([*SETUP, code]), namespace)
    except Exception as e:  # whatever the code raises is the answer
        return (type(e).__name__, str(e))
    return namespace["loss"]


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("target", [[3, 8], [3, 10], [2], [-1, 0]])
@pytest.mark.parametrize("name", list(CALLS))
def test_each_call_runs_its_own_code(name: str, target: list[int], options: dict) -> None:
    logits = LOGITS[: len(target)]
    expected = run_text(CALLS[name].code, logits, target, options)
    tried = run_call(
        name, torch.tensor(logits, dtype=torch.float64), torch.tensor(target), **options
    )
    if isinstance(expected, tuple):
        assert (tried.error_type, tried.error_message) == expected
    else:
        assert isinstance(expected, torch.Tensor) and tried.ok and tried.value is not None
        assert torch.equal(tried.value, expected.detach().double())


def test_the_usual_answers_of_this_torch() -> None:
    """What learners see, from this torch (the words may change between versions; the kinds of
    answer should not)."""
    z = torch.tensor(LOGITS, dtype=torch.float64)
    labels = torch.tensor([3, 8])
    index = run_call("index", z, labels)
    assert index.ok and index.value is not None
    assert torch.equal(index.value, F.cross_entropy(z, labels))
    one_hot = run_call("one_hot_float", z, labels)
    assert one_hot.ok and one_hot.value is not None
    assert torch.allclose(one_hot.value, index.value, rtol=1e-15, atol=0)
    assert run_call("one_hot_long", z, labels).error_type == "RuntimeError"
    assert run_call("labels_float", z, labels).error_type == "RuntimeError"
    out_of_range = run_call("index", z, torch.tensor([3, 10]))
    assert out_of_range.error_text == "IndexError: Target 10 is out of bounds."
    assert "ambiguous" in run_call("class_called", z, labels).error_text
    assert run_call("class_called", z[:1], labels[:1]).error_type == "AttributeError"
    big = torch.tensor([[1000.0, 0.0]], dtype=torch.float64)
    float32 = run_call("float32", big, torch.tensor([1]))
    assert float32.ok and float32.value is not None and float(float32.value) == 1000.0
