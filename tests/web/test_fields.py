"""POST /loss with `fields`: the engine computes only what is asked for, and each field alone is
the full answer's value for it (and PyTorch's, for the loss and the gradient)."""

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from fastapi.testclient import TestClient

from app.engine import STAGES

BODIES: dict[str, dict[str, Any]] = {
    "indices": {
        "logits": (torch.randn(6, 5, dtype=torch.float64) * 3).tolist(),
        "target": [0, 4, -100, 2, 1, 3],
        "weight": [0.5, 1.0, 2.0, 0.1, 1.5],
    },
    "smoothed, none": {
        "logits": torch.randn(20, 10, dtype=torch.float64).tolist(),  # over LIST_VALUES
        "target": (torch.arange(20) % 10).tolist(),
        "label_smoothing": 0.3,
        "reduction": "none",
    },
    "probabilities": {
        "logits": torch.randn(2, 3, 4, dtype=torch.float64).tolist(),
        "target": torch.softmax(torch.randn(2, 3, 4, dtype=torch.float64), 1).tolist(),
    },
    "all ignored": {"logits": [[1.0, 2.0], [0.5, 0.0]], "target": [-100, -100]},
}


def pytorch(body: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    z = torch.tensor(body["logits"], dtype=torch.float64, requires_grad=True)
    t = torch.tensor(body["target"])
    t = t.to(torch.float64) if t.is_floating_point() else t
    options = {k: v for k, v in body.items() if k not in ("logits", "target")}
    if "weight" in options:
        options["weight"] = torch.tensor(options["weight"], dtype=torch.float64)
    loss = F.cross_entropy(z, t, **options)
    loss.sum().backward()
    assert z.grad is not None
    return loss.tolist(), z.grad.tolist()


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("field", STAGES)
def test_each_field_alone_is_the_full_answers(client: TestClient, body: str, field: str) -> None:
    full = client.post("/loss", json=BODIES[body])
    alone = client.post("/loss", json={**BODIES[body], "fields": [field]})
    assert full.status_code == alone.status_code == 200, alone.text
    assert alone.json() == {field: full.json()[field]}


@pytest.mark.parametrize("body", BODIES)
def test_loss_and_grad_alone_are_pytorchs(client: TestClient, body: str) -> None:
    answer = client.post("/loss", json={**BODIES[body], "fields": ["grad", "loss"]}).json()
    loss, grad = pytorch(BODIES[body])
    assert list(answer) == ["loss", "grad"]
    if body == "all ignored":  # 0/0: NaN in PyTorch, null here; the gradient is 0
        assert answer["loss"] is None and answer["grad"] == grad
        return
    f64 = torch.float64
    torch.testing.assert_close(
        torch.tensor(answer["loss"], dtype=f64), torch.tensor(loss, dtype=f64)
    )
    torch.testing.assert_close(
        torch.tensor(answer["grad"], dtype=f64), torch.tensor(grad, dtype=f64)
    )


def test_an_unknown_field_is_still_refused_after_the_inputs_are_checked(client: TestClient) -> None:
    bad = client.post("/loss", json={"logits": [1.0], "target": 3, "fields": ["loss", "nope"]})
    assert bad.status_code == 422 and "target" in bad.text  # the input's error comes first
    r = client.post("/loss", json={**BODIES["indices"], "fields": ["loss", "nope"]})
    assert r.status_code == 422
    assert r.json()["detail"].startswith("unknown field 'nope'; choose from logits")
