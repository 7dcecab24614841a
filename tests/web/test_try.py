"""GET and POST /try, end to end in process, against PyTorch run here."""

import math

import pytest
import torch
import torch.nn.functional as F
from fastapi.testclient import TestClient
from torch import nn

from app.engine.tries import CALLS, SETUP

LOGITS = [
    [-1.2, -2.1, 0.6, 2.3, -0.5, 1.4, 0.3, -0.8, -0.3, -1.6],
    [0.5, 1.0, -1.0, 0.0, 2.0, 0.1, 0.2, 0.3, 0.4, 0.6],
    [3.0, -1.0, 0.0, 0.0, 0.5, 0.1, -2.0, 0.3, 0.4, 0.6],
]
LABELS = [3, 8, 0]


def raised(thunk) -> dict[str, str]:
    with pytest.raises(Exception) as info:  # PyTorch says which kind
        thunk()
    return {"type": type(info.value).__name__, "message": str(info.value)}


def test_the_catalogue_lists_each_call_with_its_code(client: TestClient) -> None:
    r = client.get("/try")
    assert r.status_code == 200
    body = r.json()
    assert body["setup"] == list(SETUP)
    assert [c["name"] for c in body["calls"]] == list(CALLS)
    assert {c["name"]: c["code"] for c in body["calls"]}["one_hot_long"] == (
        "loss = criterion(outputs, F.one_hot(labels, outputs.size(1)))"
    )


def test_class_indices_and_one_hot_floats_give_pytorchs_loss(client: TestClient) -> None:
    z, t = torch.tensor(LOGITS, dtype=torch.float64), torch.tensor(LABELS)
    for call in ("index", "one_hot_float"):
        r = client.post("/try", json={"call": call, "logits": LOGITS, "target": LABELS})
        assert r.status_code == 200, r.text
        assert r.json()["ok"] is True
        assert r.json()["value"] == pytest.approx(F.cross_entropy(z, t).item(), rel=1e-15)


def test_options_reach_the_criterion(client: TestClient) -> None:
    weight = [1.0, 1.0, 1.0, 3.0, 1.0, 1.0, 1.0, 1.0, 2.0, 1.0]
    z, t = torch.tensor(LOGITS, dtype=torch.float64), torch.tensor(LABELS)
    w = torch.tensor(weight, dtype=torch.float64)
    body = {"logits": LOGITS, "target": LABELS, "weight": weight, "label_smoothing": 0.1}
    index = client.post("/try", json={"call": "index", **body}).json()
    assert index["value"] == F.cross_entropy(z, t, w, label_smoothing=0.1).item()
    # With weights, one-hot floats are probabilities: 'mean' divides by N, not by sum w_y.
    one_hot = client.post("/try", json={"call": "one_hot_float", **body}).json()
    expected = F.cross_entropy(z, F.one_hot(t, 10).float(), w, label_smoothing=0.1).item()
    assert one_hot["value"] == expected
    assert not math.isclose(one_hot["value"], index["value"], rel_tol=1e-3)
    none = client.post("/try", json={"call": "index", **body, "reduction": "none"}).json()
    assert none["value"] == pytest.approx(
        F.cross_entropy(z, t, w, label_smoothing=0.1, reduction="none").tolist(), rel=1e-15
    )


def test_pytorchs_errors_are_answers(client: TestClient) -> None:
    z, t = torch.tensor(LOGITS, dtype=torch.float64), torch.tensor(LABELS)
    criterion = nn.CrossEntropyLoss()
    expected = {
        "one_hot_long": raised(lambda: criterion(z, F.one_hot(t, 10))),
        "labels_float": raised(lambda: criterion(z, t.float())),
        "class_called": raised(lambda: nn.CrossEntropyLoss(z, t)),
    }
    for call, error in expected.items():
        r = client.post("/try", json={"call": call, "logits": LOGITS, "target": LABELS})
        assert r.status_code == 200, r.text
        assert r.json() == {"ok": False, "error": error}
    assert "Long" in expected["one_hot_long"]["message"]
    out_of_range = client.post(
        "/try", json={"call": "index", "logits": LOGITS, "target": [3, 10, 0]}
    )
    assert out_of_range.json()["error"] == raised(lambda: criterion(z, torch.tensor([3, 10, 0])))
    assert out_of_range.json()["error"]["message"] == "Target 10 is out of bounds."
    one = client.post("/try", json={"call": "class_called", "logits": LOGITS[:1], "target": [3]})
    assert one.json()["error"]["type"] == "AttributeError"
    assert "backward" in one.json()["error"]["message"]


def test_float32_survives_a_large_logit(client: TestClient) -> None:
    r = client.post("/try", json={"call": "float32", "logits": [[1000, 0]], "target": [1]})
    assert r.json() == {"ok": True, "value": 1000.0}
    nan = client.post("/try", json={"call": "index", "logits": [[1, 2]], "target": [-100]})
    assert nan.json() == {"ok": True, "value": None}  # 'mean' of nothing: NaN, written null


@pytest.mark.parametrize(
    "body",
    [
        {"call": "exec", "logits": LOGITS, "target": LABELS},
        {"call": "index", "logits": LOGITS, "target": LABELS, "code": "import os"},
        {"call": "index", "logits": "[[1, 2]]", "target": LABELS},
        {"call": "index", "logits": LOGITS, "target": [3.0, 8.0, 0.0]},
        {"call": "index", "logits": [[1, 2], [3]], "target": [0, 1]},
        {"logits": LOGITS, "target": LABELS},
        {"call": "index", "logits": LOGITS, "target": LABELS, "reduction": "avg"},
    ],
)
def test_unknown_calls_and_malformed_bodies_are_422(client: TestClient, body: dict) -> None:
    r = client.post("/try", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]


def test_the_caps_of_loss_bound_it(client: TestClient, settings) -> None:
    many = settings.max_logits + 1
    r = client.post("/try", json={"call": "index", "logits": [0.0] * many, "target": 0})
    assert r.status_code == 422 and "too many values" in r.json()["detail"]
    # F.one_hot would allocate labels x classes values: refused before it runs
    side = math.isqrt(settings.max_logits) + 1
    body = {"call": "one_hot_long", "logits": [[0.0] * side], "target": [0] * side}
    r = client.post("/try", json=body)
    assert r.status_code == 422 and "F.one_hot" in r.json()["detail"]
    assert client.post("/try", content=b"{nope").status_code == 400
