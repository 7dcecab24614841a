"""Every 4xx answers a sentence in `detail` with a stable snake_case `code` and its `params`;
every warning comes with a code too (`warning_codes`); the pages have each code in Chinese."""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.engine import cross_entropy_stages
from app.web import errors
from app.web.i18n import CODE_MESSAGES, JS_MESSAGES, js_strings, translate
from app.web.settings import Settings
from tests.conftest import build_app, image_bytes
from tests.web.test_bad_input import CATALOGUE, Bad

APP = Path(__file__).resolve().parents[2] / "app"
SNAKE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")


@pytest.fixture(scope="module")
def app(settings: Settings) -> FastAPI:
    return build_app(settings)


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def page_message(code: str) -> str | None:
    """The English message the pages have for a code: code_<code>, or refused_<code> for the
    weights file's refusals."""
    if code in CODE_MESSAGES:
        return CODE_MESSAGES[code]
    return JS_MESSAGES.get(f"refused_{code}")


def assert_coded(body: dict[str, Any]) -> None:
    """A 4xx body: a sentence, a snake_case code the pages translate, params as an object."""
    assert isinstance(body["detail"], str) and body["detail"], body
    assert SNAKE.fullmatch(body["code"]), body
    assert isinstance(body["params"], dict), body
    assert page_message(body["code"]) is not None, f"no page message for {body['code']}"


def filled_in_chinese(code: str, params: dict[str, Any]) -> str:
    """The Chinese page's text for a code, with its params filled in as common.js does."""
    text = js_strings("zh-CN")[f"code_{code}"]
    return re.sub(r"\{(\w+)\}", lambda m: str(params[m.group(1)]), text)


@pytest.mark.parametrize("bad", CATALOGUE, ids=[bad.name for bad in CATALOGUE])
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_every_bad_input_answers_a_code_and_params(client: TestClient, bad: Bad) -> None:
    response = client.post(bad.path, **bad.request())
    assert 400 <= response.status_code < 500
    assert_coded(response.json())


def test_a_validation_error_is_a_sentence_naming_the_field(client: TestClient) -> None:
    r = client.post("/loss", json={"logits": [1.0, 2.0], "target": 0, "label_smoothing": 1.5})
    body = r.json()
    assert r.status_code == 422
    assert body["detail"] == "label_smoothing: input should be less than or equal to 1."
    assert (body["code"], body["params"]["field"]) == ("field_invalid", "label_smoothing")
    assert body["errors"][0]["loc"] == ["body", "label_smoothing"]
    missing = client.post("/loss", json={"target": 0}).json()
    assert (missing["code"], missing["params"]["field"]) == ("field_missing", "logits")
    # the form of /predict: the field is named the same way
    form = client.post(
        "/predict",
        files={"image": ("a.png", image_bytes(), "image/png")},
        data={"label_smoothing": "x"},
    ).json()
    assert (form["code"], form["params"]["field"]) == ("field_invalid", "label_smoothing")
    assert "[{" not in form["detail"] and "loc" not in form["detail"]


def test_http_errors_answer_codes(client: TestClient, settings: Settings) -> None:
    nothing = client.get("/no-such-page")
    assert nothing.status_code == 404
    assert nothing.json()["code"] == "not_found"
    assert nothing.json()["params"] == {"path": "/no-such-page"}
    wrong = client.put("/try")
    assert wrong.status_code == 405 and wrong.json()["code"] == "method_not_allowed"
    assert wrong.headers["allow"] == "GET, POST"  # was empty: FastAPI nests included routes
    assert wrong.json()["params"] == {"method": "PUT", "allowed": "GET, POST"}
    static = client.put("/static/js/common.js")
    assert static.status_code == 405 and static.json()["code"] == "method_not_allowed"
    missing = client.get("/static/js/nope.js")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    not_json = client.post("/loss", content=b"{", headers={"content-type": "application/json"})
    assert not_json.status_code == 400 and not_json.json()["code"] == "body_not_json"
    big = client.post("/loss", content=b" " * (settings.max_json_bytes + 1))
    assert big.status_code == 413 and big.json()["code"] == "body_too_large"
    for answer in (nothing, wrong, static, missing, not_json, big):
        assert_coded(answer.json())


def test_a_heic_photo_is_named_as_heic(client: TestClient) -> None:
    # The first box of an iPhone photo: ftyp, major brand heic, compatible mif1 and heic.
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    r = client.post("/predict", files={"image": ("IMG_0001.HEIC", heic, "image/heic")})
    body = r.json()
    assert r.status_code == 422 and body["code"] == "image_heic", body
    assert "HEIC" in body["detail"] and "JPEG" in body["detail"]
    assert body["params"] == {"filename": "IMG_0001.HEIC"}
    assert "HEIC" in filled_in_chinese("image_heic", body["params"])
    # AVIF is ISO base media too, but not HEIC: it stays "not an image"
    avif = b"\x00\x00\x00\x18ftypavif\x00\x00\x00\x00mif1avif" + b"\x00" * 64
    other = client.post("/predict", files={"image": ("a.avif", avif, "image/avif")}).json()
    assert other["code"] == "not_an_image"


@pytest.mark.parametrize(
    ("label", "index"),
    [("plane", 0), ("car", 1), ("Plane", 0), ("飞机", 0), ("汽车", 1), ("猫", 3), ("卡车", 9)],
)
def test_the_tutorial_and_chinese_class_names_are_labels(
    client: TestClient, label: str, index: int
) -> None:
    files = {"image": ("a.png", image_bytes(), "image/png")}
    r = client.post("/predict", files=files, data={"label": label})
    assert r.status_code == 200, r.text
    assert r.json()["images"][0]["label"] == index
    assert r.json()["images"][0]["target"] == index


def test_the_chinese_names_are_the_pages_names() -> None:
    """The aliases are the names the Chinese pages show: what a learner reads, they may type."""
    for name, zh in [
        ("airplane", "飞机"),
        ("automobile", "汽车"),
        ("cat", "猫"),
        ("truck", "卡车"),
    ]:
        assert translate("zh-CN", name) == zh


def test_step_takes_the_same_aliases(client: TestClient) -> None:
    files = [("image", (f"{k}.png", image_bytes(), "image/png")) for k in range(2)]
    r = client.post("/step", files=files, data={"label": ["car", "青蛙"], "steps": "1"})
    assert r.status_code == 200, r.text
    assert [im["label"] for im in r.json()["images"]] == [1, 6]


# The warnings: every one the engine can give, each with its code, in the order of `warnings`.
WARNINGS: list[tuple[str, dict[str, Any]]] = [
    ("all_ignored", {"logits": [[1.0, 2.0]], "target": [-100], "reduction": "sum"}),
    ("mean_all_ignored", {"logits": [[1.0, 2.0]], "target": [-100]}),
    ("mean_zero_weight", {"logits": [[1.0, 2.0]], "target": [0], "weight": [0.0, 1.0]}),
    ("probabilities_sum", {"logits": [1.0, 2.0], "target": [0.2, 0.3]}),
    ("probabilities_sum_rows", {"logits": [[1.0, 2.0]] * 2, "target": [[0.5, 0.5], [0.2, 0.3]]}),
    ("logits_spread_overflow", {"logits": [[1e308, -1e308]], "target": [1]}),
    ("loss_overflow", {"logits": [[0.0, -1000.0]], "target": [1], "weight": [1.0, 1e308]}),
    (
        "loss_overflow_rows",
        {"logits": [[0.0, -1000.0]], "target": [1], "weight": [1.0, 1e308], "reduction": "none"},
    ),
]


@pytest.mark.parametrize(("code", "body"), WARNINGS, ids=[code for code, _ in WARNINGS])
def test_each_warning_of_loss_has_its_code(client: TestClient, code: str, body: dict) -> None:
    r = client.post("/loss", json=body)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert len(answer["warning_codes"]) == len(answer["warnings"]) >= 1
    assert answer["warning_codes"][-1]["code"] == code
    assert page_message(code) is not None
    chinese = filled_in_chinese(code, answer["warning_codes"][-1]["params"])
    assert chinese and "{" not in chinese and not chinese.isascii()


def test_warning_codes_alone_are_computed(client: TestClient) -> None:
    """fields=["warning_codes"]: the engine computes the warnings for the codes too."""
    body = {"logits": [1.0, 2.0], "target": [0.2, 0.3], "fields": ["warning_codes"]}
    r = client.post("/loss", json=body).json()
    assert r == {"warning_codes": [{"code": "probabilities_sum", "params": {"sum": "0.5"}}]}


def test_ignore_index_unused_has_its_code(client: TestClient) -> None:
    r = client.post(
        "/loss", json={"logits": [1.0, 2.0], "target": [0.5, 0.5], "ignore_index": -1}
    ).json()
    assert [w["code"] for w in r["warning_codes"]] == ["ignore_index_unused"]
    assert r["warning_codes"][0]["params"] == {"ignore_index": -1}


@pytest.mark.parametrize(
    ("code", "logits", "target"),
    [
        ("logits_not_finite", [[float("nan"), 1.0]], [0]),
        ("mean_of_empty_batch", torch.zeros(0, 3).tolist(), []),
    ],
)
def test_warnings_json_cannot_reach_have_codes_too(code: str, logits: list, target: list) -> None:
    """NaN logits and an empty batch cannot be sent as JSON (the arrays refuse them); the
    engine still gives their warnings a code."""
    z = torch.tensor(logits, dtype=torch.float64).reshape(-1, 2 if logits and logits[0] else 3)
    stages = cross_entropy_stages(z, torch.tensor(target, dtype=torch.int64))
    assert [w["code"] for w in stages.warning_codes] == [code]
    assert len(stages.warnings) == 1 and page_message(code) is not None


def test_predict_answers_warning_codes(client: TestClient) -> None:
    files = {"image": ("a.png", image_bytes(), "image/png")}
    r = client.post("/predict", files=files, data={"weight": "[0,0,0,0,0,0,0,0,0,0]"}).json()
    assert [w["code"] for w in r["warning_codes"]] == ["mean_zero_weight"]
    assert r["warnings"][0].startswith("'mean' divides by 0")


# What the server can emit, read from its source: each `code="..."` argument and class
# attribute, the warnings' codes, and errors.py's tables.
CODE_PATTERNS = [
    r'\bcode="([a-z0-9_]+)"',
    r'\bcode = "([a-z0-9_]+)"',
    r'Note\(text, "([a-z0-9_]+)"',
    r'\bcode(?:, \w+)* = "([a-z0-9_]+)"',
    r'"code": "([a-z0-9_]+)"',
    r'error_body\(\s*[^,]+,\s*"([a-z0-9_]+)"',
    r'_reply\(send, \d+, \w+, "([a-z0-9_]+)"',
    r'_error\(name, [^,]+, "([a-z0-9_]+)"',
    r'_error\(\s*name, [^\n]+\n?[^,]*, "([a-z0-9_]+)"',
]


def source_codes() -> set[str]:
    found: set[str] = set()
    for path in APP.rglob("*.py"):
        text = path.read_text()
        for pattern in CODE_PATTERNS:
            found |= set(re.findall(pattern, text))
    found |= set(errors.HTTP_CODES.values()) | set(errors.VALIDATION_CODES.values())
    return found | {"field_invalid", "invalid_input", "internal_error"}


def test_every_code_the_server_can_emit_has_a_chinese_message() -> None:
    codes = source_codes()
    assert len(codes) > 60 and {"image_heic", "mean_zero_weight", "body_stalled"} <= codes
    strings = js_strings("zh-CN")
    for code in sorted(codes):
        key = f"code_{code}" if code in CODE_MESSAGES else f"refused_{code}"
        assert key in strings, f"{code}: no message for the pages"
        english = CODE_MESSAGES.get(code) or JS_MESSAGES[key]
        assert strings[key] != english and not strings[key].isascii(), f"{code}: untranslated"
        placeholders = set(re.findall(r"\{(\w+)\}", english))
        assert set(re.findall(r"\{(\w+)\}", strings[key])) == placeholders, code


def test_docs_speak_the_pages_language_and_link_back(client: TestClient) -> None:
    zh = client.get("/docs?lang=zh-CN").text
    assert '<html lang="zh-CN">' in zh and "返回应用" in zh and 'href="/?lang=zh-CN"' in zh
    assert "交叉熵" in client.get("/docs", headers={"accept-language": "zh-CN,zh"}).text
    en = client.get("/docs").text
    assert 'href="/"' in en and "Back to the app" in en
    schema = client.get("/openapi.json").json()
    tags = {tag for op in schema["paths"].values() for o in op.values() for tag in o["tags"]}
    assert "default" not in tags and {"loss", "pictures", "training", "model"} <= tags
    error = schema["components"]["schemas"]["ErrorAnswer"]["properties"]
    assert {"detail", "code", "params"} <= set(error)
