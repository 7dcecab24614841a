"""The .npz answer of /loss and /predict (Accept: application/x-npz): the JSON answer's numbers,
as arrays, against the JSON of the same request and against PyTorch run here."""

import io
import json
import math
import zipfile
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fastapi.testclient import TestClient
from httpx import Response

from app.model import CLASSES
from app.web.serialize import npz_bytes
from tests.conftest import image_bytes

NPZ = {"accept": "application/x-npz"}
STAGES = [
    "logits", "max_logit", "shifted", "exp", "sum_exp", "log_sum_exp", "softmax", "log_probs",
    "one_hot", "target_dist", "per_element_loss", "loss", "grad", "predicted", "denominator",
    "torch_loss", "warnings", "warning_codes",
]  # fmt: skip


def arrays(r: Response) -> dict[str, np.ndarray]:
    """The .npz answer, opened as a client would: no pickle."""
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/x-npz"
    with np.load(io.BytesIO(r.content), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def same_as_json(npz: dict[str, np.ndarray], answer: dict[str, Any]) -> None:
    """Every array of the .npz is the JSON value with the same name, null read as NaN or inf:
    the same keys (None left out), the same numbers to the last bit, ints as int64."""
    assert list(npz) == [key for key, value in answer.items() if value is not None]
    for name, array in npz.items():
        value = answer[name]
        if array.dtype.kind == "U":
            assert array.tolist() == value or [json.loads(v) for v in array.tolist()] == value
            continue
        expected = np.array(value, dtype=array.dtype if array.dtype.kind == "i" else float)
        assert array.shape == expected.shape, name
        finite = np.isfinite(array) if array.dtype.kind == "f" else np.ones(array.shape, bool)
        assert np.array_equal(array[finite], expected[finite]), name
        assert np.isnan(expected[~finite]).all(), name  # null in JSON: NaN or inf here


def reference(logits: Any, target: Any, **options: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """F.cross_entropy and autograd's gradient in float64 (of the sum for 'none')."""
    z = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    t = torch.tensor(target)
    if t.is_floating_point():
        t = torch.tensor(target, dtype=torch.float64)
    if "weight" in options:
        options["weight"] = torch.tensor(options["weight"], dtype=torch.float64)
    loss = F.cross_entropy(z, t, **options)
    loss.sum().backward()
    assert z.grad is not None
    return loss.detach(), z.grad


BODIES: list[dict[str, Any]] = [
    # small (nested lists in the JSON-ready answer) and large (numpy arrays) batches
    {"logits": [[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]], "target": [0, 2]},
    {
        "logits": (torch.randn(64, 10, dtype=torch.float64) * 3).tolist(),
        "target": torch.randint(0, 10, (64,)).tolist(),
        "weight": [0.5 + i / 10 for i in range(10)],
        "label_smoothing": 0.1,
    },
    {
        "logits": torch.randn(3, 4, 2, dtype=torch.float64).tolist(),
        "target": torch.softmax(torch.randn(3, 4, 2, dtype=torch.float64), dim=1).tolist(),
        "reduction": "none",
    },
    {"logits": [1.0, 2.0, 0.5], "target": 1, "reduction": "sum", "ignore_index": 2},
]


@pytest.mark.parametrize("body", BODIES)
def test_the_npz_carries_the_json_numbers_and_pytorchs(client: TestClient, body: Any) -> None:
    npz = arrays(client.post("/loss", json=body, headers=NPZ))
    answer = client.post("/loss", json=body).json()
    same_as_json(npz, answer)
    assert list(npz) == [s for s in STAGES if answer[s] is not None]
    options = {k: v for k, v in body.items() if k not in ("logits", "target")}
    loss, grad = reference(body["logits"], body["target"], **options)
    assert np.array_equal(npz["torch_loss"], loss.numpy())  # F.cross_entropy itself
    np.testing.assert_allclose(npz["loss"], loss.numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(npz["grad"], grad.numpy(), rtol=1e-10, atol=1e-15)
    assert npz["logits"].dtype == np.float64 and npz["predicted"].dtype == np.int64
    assert npz["warnings"].dtype.kind == "U"


def test_scalars_are_0_d_arrays_and_warnings_unicode(client: TestClient) -> None:
    npz = arrays(client.post("/loss", json=BODIES[0], headers=NPZ))
    for name in ("loss", "denominator", "torch_loss"):
        assert npz[name].shape == () and npz[name].dtype == np.float64
    assert npz["denominator"] == 2.0
    assert npz["warnings"].shape == (0,) and npz["warnings"].dtype.kind == "U"


def test_nan_and_inf_are_kept_where_json_writes_null(client: TestClient) -> None:
    body = {"logits": [[1.0, 2.0], [3.0, -1e308]], "target": [-100, -100], "fields": ["loss"]}
    npz = arrays(client.post("/loss", json=body, headers=NPZ))
    assert math.isnan(npz["loss"]) and client.post("/loss", json=body).json()["loss"] is None
    overflow = {"logits": [[1e308, -1e308, 0.0]], "target": [1], "reduction": "none"}
    npz = arrays(client.post("/loss", json=overflow, headers=NPZ))
    answer = client.post("/loss", json=overflow).json()
    assert npz["shifted"][0, 1] == -math.inf and answer["shifted"][0][1] is None
    assert npz["loss"][0] == math.inf and answer["loss"][0] is None
    assert npz["warnings"].size == 1 and "overflows" in str(npz["warnings"][0])
    same_as_json(npz, answer)


def test_absent_stages_are_left_out(client: TestClient) -> None:
    fields: dict[str, Any] = {**BODIES[0], "fields": ["grad", "loss", "warnings"]}
    assert list(arrays(client.post("/loss", json=fields, headers=NPZ))) == [
        "loss",
        "grad",
        "warnings",
    ]
    probabilities = arrays(client.post("/loss", json=BODIES[2], headers=NPZ))
    assert "one_hot" not in probabilities  # null in JSON: no such stage for probabilities


def test_a_big_npz_is_never_gzipped(client: TestClient) -> None:
    body = {"logits": torch.randn(4096, 10).tolist(), "target": [1] * 4096}
    r = client.post("/loss", json=body, headers={**NPZ, "accept-encoding": "gzip"})
    assert "content-encoding" not in r.headers
    assert r.content[:4] == b"PK\x03\x04"  # a zip archive, as sent
    assert int(r.headers["content-length"]) == len(r.content)
    assert arrays(r)["logits"].shape == (4096, 10)
    json_answer = client.post("/loss", json=body, headers={"accept-encoding": "gzip"})
    assert json_answer.headers["content-encoding"] == "gzip"  # JSON still is


def test_predict_answers_npz_too(client: TestClient) -> None:
    files = [
        ("image", ("red.png", image_bytes(), "image/png")),
        ("image", ("blue.png", image_bytes((20, 40, 220)), "image/png")),
    ]
    data = {"label": ["cat", ""]}
    npz = arrays(client.post("/predict", files=files, data=data, headers=NPZ))
    answer = client.post("/predict", files=files, data=data).json()
    same_as_json(npz, answer)
    assert npz["classes"].tolist() == list(CLASSES)
    assert npz["target_source"].shape == () and str(npz["target_source"]) == "mixed"
    images = [json.loads(text) for text in npz["images"].tolist()]
    assert [i["filename"] for i in images] == ["red.png", "blue.png"] and images[1]["label"] is None
    target = [3, int(npz["predicted"][1])]
    loss, grad = reference(npz["logits"].tolist(), target)
    np.testing.assert_allclose(npz["loss"], loss.numpy(), rtol=1e-12)
    np.testing.assert_allclose(npz["grad"], grad.numpy(), rtol=1e-10, atol=1e-15)


def test_predict_with_a_picture_left_out(client: TestClient) -> None:
    files = [
        ("image", ("junk.png", b"not a picture", "image/png")),
        ("image", ("red.png", image_bytes(), "image/png")),
    ]
    npz = arrays(client.post("/predict", files=files, headers=NPZ))
    answer = client.post("/predict", files=files).json()
    same_as_json(npz, answer)
    images = [json.loads(text) for text in npz["images"].tolist()]
    assert images == answer["images"] and "error" in images[0]
    assert npz["logits"].shape == (1, 10)


@pytest.mark.parametrize(
    ("accept", "npz"),
    [
        ("application/x-npz", True),
        ("application/x-npz, application/json;q=0.9", True),
        ("application/json;q=0.1, Application/X-NPZ;q=0.2", True),
        ("application/x-npz, */*;q=0.1", True),
        ("application/x-npz;q=0", False),
        ("application/json, application/x-npz", False),  # a tie keeps the default
        ("*/*", False),
        ("application/*", False),
        ("image/png", False),  # nothing on offer: JSON, as for any other Accept (no 406)
        ("text/html", False),
        ("", False),
    ],
)
def test_accept_chooses_npz_only_when_it_ranks_first(
    client: TestClient, accept: str, npz: bool
) -> None:
    r = client.post("/loss", json=BODIES[0], headers={"accept": accept})
    assert r.status_code == 200
    assert r.headers["content-type"] == ("application/x-npz" if npz else "application/json")
    assert r.headers["vary"] == "Accept"


def test_errors_stay_json(client: TestClient) -> None:
    r = client.post("/loss", json={"logits": [1.0, "x"], "target": 0}, headers=NPZ)
    assert r.status_code == 422 and r.headers["content-type"] == "application/json"
    assert "expected numbers" in r.json()["detail"]
    r = client.post("/predict", files=[("image", ("x.png", b"nope", "image/png"))], headers=NPZ)
    assert r.status_code == 422 and "detail" in r.json()


def test_openapi_documents_the_npz_answer(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/loss", "/predict"):
        content = paths[path]["post"]["responses"]["200"]["content"]
        assert set(content) == {"application/json", "application/x-npz"}
        assert content["application/x-npz"]["schema"] == {"type": "string", "format": "binary"}
        assert "$ref" in json.dumps(content["application/json"])


ARCHIVE_CASES = {
    "scalar": np.array(2.5),
    "int": np.array([[1, -2, 3]], dtype=np.int64),
    "nan": np.array([np.nan, np.inf, -np.inf, -0.0]),
    "fortran": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
    "strided": np.arange(20.0)[::3],
    "empty": np.array([], dtype=np.str_),
    "text": np.array(["one", "二"]),
    "bool": np.array([True, False]),
}


def test_the_archive_holds_what_np_savez_writes() -> None:
    """npz_bytes against numpy's own np.savez: the same members, byte for byte, every CRC-32
    right (zipfile checks them), stored and not compressed."""
    ours = zipfile.ZipFile(io.BytesIO(npz_bytes(ARCHIVE_CASES)))
    saved = io.BytesIO()
    np.savez(saved, **ARCHIVE_CASES)  # type: ignore[arg-type]
    theirs = zipfile.ZipFile(saved)
    assert ours.testzip() is None  # every member's CRC-32 matches its bytes
    assert ours.namelist() == theirs.namelist() == [f"{k}.npy" for k in ARCHIVE_CASES]
    for info in ours.infolist():
        assert info.compress_type == zipfile.ZIP_STORED and info.flag_bits == 0
        if info.filename != "fortran.npy":  # savez keeps Fortran order; we write C order
            assert ours.read(info) == theirs.read(info.filename), info.filename
    with np.load(io.BytesIO(npz_bytes(ARCHIVE_CASES)), allow_pickle=False) as archive:
        for key, expected in ARCHIVE_CASES.items():
            got = archive[key]
            assert got.dtype == expected.dtype and got.shape == expected.shape, key
            assert np.array_equal(got, expected, equal_nan=expected.dtype.kind == "f"), key


def test_the_archive_is_the_zip_that_zipfile_writes() -> None:
    """Every header field, byte for byte, against the standard library's zipfile writing the
    same .npy members (as numpy.lib.format writes them) with the same dates and attributes."""
    cases = {k: v for k, v in ARCHIVE_CASES.items() if v.flags.c_contiguous}
    expected = io.BytesIO()
    with zipfile.ZipFile(expected, "w", zipfile.ZIP_STORED) as archive:
        for key, array in cases.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, array, allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.create_system, info.create_version, info.extract_version = 3, 20, 20
            archive.writestr(info, member.getvalue())
    assert npz_bytes(cases) == expected.getvalue()


def test_an_archive_of_nothing_is_an_empty_npz() -> None:
    with np.load(io.BytesIO(npz_bytes({})), allow_pickle=False) as archive:
        assert archive.files == []
