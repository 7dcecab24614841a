"""The instrument on / and /sandbox in headless chromium: the JavaScript engine against the
Python one, every control against PyTorch run here, PyTorch's own errors, the gradient step,
the parts of cross-entropy, the state in the address bar, refusals, phone width, languages.
How fast it redraws is measured by bench.explainer, not here."""

import math
import random
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from app.engine import cross_entropy_stages
from tests.browser.test_browser import AGREED, CJK, load, until

pytestmark = pytest.mark.browser

LOSS = '[data-testid="loss-value"]'
LOGIT = 'input[data-testid="logit"]'
TARGET = 'select[data-testid="target"]'
STAGES = [
    "logits", "max_logit", "shifted", "exp", "sum_exp", "log_sum_exp", "softmax", "log_probs",
    "one_hot", "target_dist", "per_element_loss", "loss", "grad", "predicted", "denominator",
]  # fmt: skip
# A state of / that does not depend on the served weights: four rows of logits, their targets.
ROWS = [
    [-1.2, -2.1, 0.6, 2.3, -0.5, 1.4, 0.3, -0.8, -0.3, -1.6],
    [0.5, 1.0, -1.0, 0.0, 2.0, 0.1, 0.2, 0.3, 4.4, 0.6],
    [3.0, -1.0, 0.0, 0.0, 0.5, 0.1, -2.0, 0.3, 1.4, 0.6],
    [1.5, 0.25, -0.5, 0.75, 0.0, -1.25, 2.0, 0.5, -0.75, 1.0],
]
TARGETS = [3, 8, 8, 0]
EXPLAINER = (
    "?z=" + ";".join(",".join(map(str, r)) for r in ROWS) + "&t=" + ",".join(map(str, TARGETS))
)


# ---- the engine in JavaScript against the engine in Python ----------------------------------


def random_state(rng: random.Random) -> dict[str, Any]:
    """A batch of 1-8 rows, 2-12 classes, logits up to +-1e4 (often a row far larger than the
    others), with or without label smoothing, weights (some 0), ignored targets and probability
    targets (some not summing to 1), each reduction."""
    n, c = rng.randint(1, 8), rng.choice([2, 3, 5, 10, 10, 12])
    scale = 10 ** rng.uniform(-2, 4)
    logits = [[rng.uniform(-scale, scale) for _ in range(c)] for _ in range(n)]
    if rng.random() < 0.2:
        logits[0][rng.randrange(c)] = rng.choice([1e4, -1e4])
    eps = 0.0 if rng.random() < 0.4 else rng.choice([rng.random(), 0.1, 1.0])
    weight = None
    if rng.random() < 0.5:
        weight = [0.0 if rng.random() < 0.1 else rng.uniform(0, 3) for _ in range(c)]
    ignore_index = -100
    if rng.random() < 0.5:
        if rng.random() < 0.3:
            ignore_index = rng.randrange(c)
        target: Any = [ignore_index if rng.random() < 0.2 else rng.randrange(c) for _ in range(n)]
        if rng.random() < 0.05:
            target = [ignore_index] * n  # 'mean' divides by 0
    else:
        target = []
        for _ in range(n):
            row = [rng.random() ** 3 for _ in range(c)]
            total = sum(row) if rng.random() < 0.8 else 1.0
            target.append([v / total for v in row])
    return {
        "logits": logits,
        "target": target,
        "weight": weight,
        "ignore_index": ignore_index,
        "reduction": rng.choice(["mean", "sum", "none"]),
        "label_smoothing": eps,
    }


def engine(state: dict[str, Any]) -> dict[str, Any]:
    target = torch.tensor(state["target"])
    if target.is_floating_point():
        target = torch.tensor(state["target"], dtype=torch.float64)
    weight = state["weight"]
    stages = cross_entropy_stages(
        torch.tensor(state["logits"], dtype=torch.float64),
        target,
        None if weight is None else torch.tensor(weight, dtype=torch.float64),
        state["ignore_index"],
        state["reduction"],
        state["label_smoothing"],
    )
    return {name: getattr(stages, name) for name in STAGES}


def agree(a: float, b: float, zmax: float) -> bool:
    """The issue's rule: |a - b| <= 1e-12 max(|a|, |b|) + 1e-15 (1 + the row's largest |z|);
    NaN equals NaN, an infinity itself."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= 1e-12 * max(abs(a), abs(b)) + 1e-15 * (1 + zmax)


def disagreements(state: dict[str, Any], mine: dict[str, Any]) -> list[str]:
    expected = engine(state)
    zmax = [max(abs(v) for v in row) for row in state["logits"]]
    out = []
    for name in STAGES:
        want = expected[name]
        got = mine[name]
        if want is None or got is None:
            if not (want is None and got is None):
                out.append(f"{name}: {got!r} for {want!r}")
            continue
        want_list = want.reshape(-1).tolist()
        got_flat = torch.tensor(got, dtype=torch.float64).reshape(-1).tolist()
        if len(want_list) != len(got_flat):
            out.append(f"{name}: {len(got_flat)} values for {len(want_list)}")
            continue
        per_row = want.dim() >= 1 and not (name == "loss" and state["reduction"] != "none")
        width = len(want_list) // len(zmax) if per_row else 0
        for k, (x, y) in enumerate(zip(want_list, got_flat, strict=True)):
            scale = zmax[k // width] if per_row and width else max(zmax)
            if not agree(float(x), float(y), scale):
                out.append(f"{name}[{k}]: {y!r} here, {x!r} from the engine")
    return out


MIRROR = """async (states) => {
  const { crossEntropy } = await import('/static/js/engine.js');
  return states.map((s) => crossEntropy(s.logits, s.target, {weight: s.weight,
    ignoreIndex: s.ignore_index, reduction: s.reduction, labelSmoothing: s.label_smoothing}));
}"""


def test_the_javascript_engine_agrees_with_the_engine(open_page: Any, server: str) -> None:
    rng = random.Random(13)
    states = [random_state(rng) for _ in range(600)]
    page = open_page().page
    page.goto(server + "/sandbox")
    mirrored = page.evaluate(MIRROR, states)
    wrong = {k: bad for k, s in enumerate(states) if (bad := disagreements(s, mirrored[k]))}
    assert not wrong, {k: (states[k], v[:3]) for k, v in list(wrong.items())[:3]}
    kinds = {
        "probabilities": sum(isinstance(s["target"][0], list) for s in states),
        "ignored": sum(s["ignore_index"] in s["target"] for s in states),
        "weights": sum(s["weight"] is not None for s in states),
        "smoothing": sum(s["label_smoothing"] > 0 for s in states),
        "large": sum(max(abs(v) for r in s["logits"] for v in r) > 1e3 for s in states),
        "batches": sum(len(s["logits"]) > 1 for s in states),
    }
    assert min(kinds.values()) >= 50, kinds


# ---- the instrument against PyTorch ---------------------------------------------------------


def state_of(page: Any) -> dict[str, Any]:
    """The state the address bar holds (the page writes it once the state holds still)."""
    q = {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}
    rows = [[float(x) for x in row.split(",")] for row in q["z"].split(";")]
    return {
        "logits": rows,
        "target": [int(t) for t in q["t"].split(",")],
        "weight": [float(x) for x in q["w"].split(",")] if "w" in q else None,
        "reduction": q.get("red", "mean"),
        "label_smoothing": float(q.get("ls", 0)),
        "form": q.get("form", "index"),
        "i": int(q.get("i", 0)),
    }


def torch_answer(state: dict[str, Any]) -> tuple[torch.Tensor, Any]:
    """F.cross_entropy run here on a state, with its gradient: (loss, logits.grad)."""
    z = torch.tensor(state["logits"], dtype=torch.float64, requires_grad=True)
    t = torch.tensor(state["target"])
    if state["form"] == "one_hot_float":
        t = F.one_hot(t, z.shape[1]).double()
    w = state["weight"]
    loss = F.cross_entropy(
        z,
        t,
        None if w is None else torch.tensor(w, dtype=torch.float64),
        reduction=state["reduction"],
        label_smoothing=state["label_smoothing"],
    )
    loss.sum().backward()
    return loss.detach(), z.grad


def settled(page: Any) -> None:
    """The page has drawn the latest input and PyTorch has agreed with every stage of it."""
    until(page, "document.querySelector('[data-testid=loss-value]').dataset.pending === 'false'")
    until(page, AGREED)


def shown(page: Any) -> float:
    return float(page.inner_text(LOSS))


def loss_matches_torch(page: Any) -> dict[str, Any]:
    settled(page)
    state = state_of(page)
    loss, _ = torch_answer(state)
    expected = loss[state["i"]] if loss.dim() else loss
    assert shown(page) == pytest.approx(float(expected), rel=1e-6, abs=1e-6), state
    return state


def test_every_control_is_followed_and_agrees_with_pytorch(open_page: Any, server: str) -> None:
    watched = open_page()
    page = load(watched, server, "/", EXPLAINER)
    loss_matches_torch(page)
    before = shown(page)
    page.fill(LOGIT + " >> nth=3", "0.5")  # a typed logit
    assert loss_matches_torch(page)["logits"][0][3] == 0.5
    assert shown(page) != before
    slider = page.locator(".logit-row >> nth=8").locator("input[type=range]")
    box = slider.bounding_box()
    page.mouse.move(box["x"] + 5, box["y"] + box["height"] / 2)
    page.mouse.down()
    for k in range(1, 6):  # a drag: one input event per move
        page.mouse.move(box["x"] + 5 + k * box["width"] / 6, box["y"] + box["height"] / 2)
    page.mouse.up()
    assert loss_matches_torch(page)["logits"][0][8] > -10
    page.select_option(TARGET, "5")
    assert loss_matches_torch(page)["target"][0] == 5
    page.fill("#smoothing", "0.2")
    assert loss_matches_torch(page)["label_smoothing"] == 0.2
    page.check("#use-weight")
    assert loss_matches_torch(page)["weight"] == [1, 1, 1, 3, 1, 1, 1, 1, 2, 1]
    page.fill("#weight-8", "5")
    assert loss_matches_torch(page)["weight"][8] == 5
    for reduction in ("sum", "none", "mean"):
        page.select_option("#reduction", reduction)
        assert loss_matches_torch(page)["reduction"] == reduction
    page.click("#add-row")
    assert len(loss_matches_torch(page)["logits"]) == 5
    page.click("[data-row-button='2']")
    page.fill(LOGIT + " >> nth=0", "-3")
    state = loss_matches_torch(page)
    assert state["i"] == 2 and state["logits"][2][0] == -3
    page.select_option(TARGET, "-100")  # ignored: 'mean' divides by the other rows' weights
    assert loss_matches_torch(page)["target"][2] == -100
    page.click("#remove-row")
    assert len(loss_matches_torch(page)["logits"]) == 4
    # the table shows the row's stages as PyTorch computes them
    state = state_of(page)
    p = torch.softmax(torch.tensor(state["logits"][state["i"]], dtype=torch.float64), 0)
    cells = page.eval_on_selector_all(
        "[data-role=stage-table] tbody tr td:nth-of-type(4)", "els => els.map(e => e.textContent)"
    )
    assert [float(c) for c in cells] == pytest.approx(p.tolist(), abs=6e-5)
    assert watched.errors == [] and watched.foreign == []


def pytorch_error(thunk: Any) -> str:
    with pytest.raises(Exception) as info:  # PyTorch says which kind
        thunk()
    return f"{type(info.value).__name__}: {info.value}"


def test_the_label_forms_give_pytorchs_own_answers(open_page: Any, server: str) -> None:
    watched = open_page()
    page = load(watched, server, "/", EXPLAINER)
    z = torch.tensor(ROWS, dtype=torch.float64)
    labels = torch.tensor(TARGETS)
    criterion = nn.CrossEntropyLoss()
    errors = {
        "one_hot_long": pytorch_error(lambda: criterion(z, F.one_hot(labels, 10))),
        "labels_float": pytorch_error(lambda: criterion(z, labels.float())),
        "class_called": pytorch_error(lambda: nn.CrossEntropyLoss(z, labels)),
    }
    for form, error in errors.items():
        page.check(f"input[name=form][value={form}]")
        until(page, f"document.querySelector('#verdict').textContent.includes({error!r})")
        assert page.get_attribute("#verdict", "data-verdict") == "refused"
        assert error in page.inner_text("#form-result")
        assert page.inner_text(LOSS) == ""  # no loss where PyTorch gives none
        assert "is-refused" in (page.get_attribute("#instrument", "class") or "")
    # float one-hot rows: probabilities, the same loss...
    page.check("input[name=form][value=one_hot_float]")
    settled(page)
    assert shown(page) == pytest.approx(F.cross_entropy(z, labels).item(), rel=1e-6)
    # ...but not with class weights: 'mean' divides by N, not by the targets' weights
    page.check("#use-weight")
    state = loss_matches_torch(page)
    assert state["form"] == "one_hot_float"
    w = torch.tensor(state["weight"], dtype=torch.float64)
    assert shown(page) != pytest.approx(F.cross_entropy(z, labels, w).item(), rel=1e-3)
    assert "N = 4" in page.inner_text("#form-result")
    # a label out of range
    page.check("input[name=form][value=index]")
    page.select_option(TARGET, "10")
    bad = torch.tensor([10, *TARGETS[1:]])
    error = pytorch_error(lambda: nn.CrossEntropyLoss(weight=w)(z, bad))
    until(page, f"document.querySelector('#verdict').textContent.includes({error!r})")
    assert "Target 10 is out of bounds" in error
    assert watched.errors == [] and watched.foreign == []


def test_a_gradient_step_moves_the_logits_against_the_gradient(open_page: Any, server: str) -> None:
    watched = open_page()
    page = load(watched, server, "/", EXPLAINER + "&eta=2")
    before = loss_matches_torch(page)
    loss, grad = torch_answer(before)
    page.click("#step")
    after = loss_matches_torch(page)
    expected = torch.tensor(before["logits"], dtype=torch.float64) - 2 * grad
    assert torch.allclose(torch.tensor(after["logits"], dtype=torch.float64), expected, rtol=1e-12)
    assert shown(page) < loss.item()
    assert "1" in page.inner_text("#step-count")
    page.click("#step10")
    settled(page)
    until(page, "document.querySelector('#step-count').textContent.includes('11')")
    assert page.locator("[data-chart=history] circle").count() == 12
    page.click("#unstep")
    assert loss_matches_torch(page)["logits"] == before["logits"]
    assert watched.errors == []


def test_cross_entropy_is_entropy_plus_divergence(open_page: Any, server: str) -> None:
    watched = open_page()
    page = load(watched, server, "/", EXPLAINER + "&ls=0.1")
    state = loss_matches_torch(page)
    page.locator("#entropy-panel").scroll_into_view_if_needed()
    z = torch.tensor(ROWS[0], dtype=torch.float64)
    q = torch.full((10,), 0.01, dtype=torch.float64)
    q[3] += 0.9
    logp = torch.log_softmax(z, 0)
    expected = {
        "H(q, p)": float(-(q * logp).sum()),
        "H(q)": float(-(q * q.log()).sum()),
        "KL(q ‖ p)": float(F.kl_div(logp, q, reduction="sum")),
    }
    until(page, "document.querySelectorAll('#entropy-keys dd').length === 4")
    keys = page.eval_on_selector_all(
        "#entropy-keys div",
        "els => els.map(e => [e.children[0].textContent, e.children[1].textContent])",
    )
    got = {k: float(v) for k, v in keys}
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-6)
    assert expected["H(q)"] > 0  # smoothing: a floor the loss cannot go below
    assert got["H(q, p)"] == pytest.approx(
        torch_answer({**state, "reduction": "none"})[0][0].item(), abs=1e-6
    )
    page.check("#use-weight")
    settled(page)
    until(page, "document.querySelector('#entropy-panel').classList.contains('is-off')")
    assert page.is_visible("#entropy-note")
    assert watched.errors == []


def test_a_link_and_copy_as_pytorch_reproduce_the_state(open_page: Any, server: str) -> None:
    watched = open_page()
    page = load(watched, server, "/", EXPLAINER)
    page.fill(LOGIT + " >> nth=1", "1e308")  # huge but finite: written exactly, not Infinity
    settled(page)
    page.fill("#smoothing", "0.05")
    page.check("#use-weight")
    page.select_option("#reduction", "sum")
    settled(page)
    assert "1e%2B308" in page.url and "Infinity" not in page.url
    loss = page.inner_text(LOSS)
    page.locator("#code-panel").scroll_into_view_if_needed()
    until(page, "document.querySelector('#code').textContent.includes('reduction=\"sum\"')")
    code = page.inner_text("#code")
    namespace: dict[str, Any] = {}
    exec(code.replace("print(", "(lambda *a: None)("), namespace)  # our own snippet
    assert namespace["loss"].item() == pytest.approx(float(loss), rel=1e-6)
    again = load(open_page(), server, "/", "?" + urlsplit(page.url).query)
    assert again.inner_text(LOSS) == loss
    assert watched.errors == []


# ---- the sandbox: a batch, visible refusals, temperature, the table -------------------------


def test_the_sandbox_batch_makes_weights_and_reduction_count(open_page: Any, server: str) -> None:
    watched = open_page()
    page = load(watched, server, "/sandbox")
    assert len(loss_matches_torch(page)["logits"]) == 3
    before = shown(page)
    page.check("#use-weight")
    page.fill("#weight-0", "5")
    assert loss_matches_torch(page)["weight"][0] == 5
    assert shown(page) != pytest.approx(before, rel=1e-3)  # a batch: the weight counts
    assert "Σ wy" in page.inner_text("#loss-formula")  # what 'mean' divides by, w_y
    assert page.inner_text("#loss-formula sub") == "y"
    page.select_option("#reduction", "sum")
    loss_matches_torch(page)
    assert "/" not in page.inner_text("#loss-formula")  # nothing is divided under 'sum'
    # one row: the weight cancels in the mean, and the page says why
    one = load(open_page(), server, "/sandbox", "?z=2,1,0.1&t=0&w=5,1,1")
    assert "cancels" in one.inner_text("#notes")
    assert watched.errors == []


def test_refusals_are_visible_and_links_reproduce(open_page: Any, server: str) -> None:
    watched = open_page()
    page = load(watched, server, "/sandbox", "?z=2,1,0.1,-1.2,0.5&t=0&T=1000")
    # the old link's T = 1000 is not clamped: the logits are z / 1000, and the page says so
    assert "T = 1000" in page.inner_text("#notes")
    assert state_of(page)["logits"][0][0] == pytest.approx(0.002, rel=1e-15)
    loss = page.inner_text(LOSS)
    for text in ("", "1e309"):
        page.fill(LOGIT + " >> nth=0", text)
        until(page, "document.querySelector('#verdict').dataset.verdict === 'stale'")
        assert page.get_attribute(LOGIT + " >> nth=0", "aria-invalid") == "true"
        assert page.inner_text("#logit-0-error")
        assert page.locator("#notes .error").count() == 1
        assert page.inner_text(LOSS) == loss  # the last valid numbers, marked stale
        assert "is-stale" in (page.get_attribute(LOSS, "class") or "")
    page.fill(LOGIT + " >> nth=0", "3")
    settled(page)
    assert page.locator("#notes .error").count() == 0
    page.fill("#num-classes", "21")
    page.dispatch_event("#num-classes", "change")
    assert page.inner_text("#num-classes-error")
    assert page.locator(LOGIT).count() == 5  # refused, not clamped
    page.fill("#temperature", "0")
    page.click("#apply-temperature")
    assert page.inner_text("#temperature-error")
    page.fill("#smoothing", "1.5")
    assert page.inner_text("#smoothing-error")
    assert watched.errors == []


def test_the_table_keeps_its_key_columns_in_view_at_1280(open_page: Any, server: str) -> None:
    for path, query in (("/", EXPLAINER + "&w=1,1,1,3,1,1,1,1,2,1"), ("/sandbox", "?w=2,1,1,1,1")):
        page = load(open_page(width=1280), server, path, query)
        box = page.locator(".instrument .table-scroll")
        sizes = box.evaluate("e => [e.scrollWidth, e.clientWidth]")
        assert sizes[0] <= sizes[1], (path, sizes)
        heads = page.eval_on_selector_all(
            ".instrument .stage-table thead th", "els => els.map(e => e.textContent)"
        )
        for column in ("y · log p", "p − y", "weight w"):
            assert any(column in h for h in heads), (column, heads)


def test_at_phone_width_the_bars_and_the_loss_follow_the_dragged_logit(
    open_page: Any, server: str
) -> None:
    watched = open_page(width=390)
    page = load(watched, server, "/sandbox")
    row = page.locator(".logit-row >> nth=3")
    row.scroll_into_view_if_needed()
    number = row.locator(LOGIT).bounding_box()
    bar = row.locator(".mini-p").bounding_box()
    assert abs(bar["y"] - number["y"]) < 60  # the probability bar sits right under the field
    before = row.locator(".mini-p i").evaluate("e => e.style.width")
    page.fill(LOGIT + " >> nth=3", "6")
    settled(page)
    assert row.locator(".mini-p i").evaluate("e => e.style.width") != before
    readout = page.locator("#readout").bounding_box()
    assert readout["y"] >= 0 and readout["y"] + readout["height"] <= 844  # the loss in view
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert watched.errors == []


def test_off_screen_charts_are_drawn_before_they_are_seen(open_page: Any, server: str) -> None:
    watched = open_page()
    page = load(watched, server, "/", EXPLAINER)
    for k in range(5):
        page.fill(LOGIT + " >> nth=2", str(k))
    settled(page)
    latest = page.get_attribute("html", "data-draw-version")
    charts = page.locator("[data-chart]")
    for k in range(charts.count()):
        chart = charts.nth(k)
        chart.scroll_into_view_if_needed()
        until(
            page, f"document.querySelectorAll('[data-chart]')[{k}].dataset.version === '{latest}'"
        )
    assert watched.errors == []


def test_keyboard_and_chinese(open_page: Any, server: str) -> None:
    watched = open_page(locale="zh-CN")
    page = load(watched, server, "/", EXPLAINER + "&lang=zh-CN")
    assert CJK.search(page.inner_text("#verdict"))
    # one-hot glossed once on the page (in the question), 独热 after
    assert (page.text_content("main") or "").count("独热（one-hot") == 1
    assert "独热" in (page.text_content("#form-panel") or "")
    before = shown(page)
    page.focus(LOGIT + " >> nth=3")
    page.keyboard.press("ArrowUp")  # a number field steps by 0.1
    state = loss_matches_torch(page)
    assert state["logits"][0][3] == pytest.approx(2.4)
    assert shown(page) != before
    page.focus("input[name=form][value=index]")
    page.keyboard.press("ArrowDown")  # the next form of the label
    until(page, "document.querySelector('#verdict').dataset.verdict === 'agrees'")
    assert re.search(CJK, page.text_content("#form-result") or "")
    assert watched.errors == []
