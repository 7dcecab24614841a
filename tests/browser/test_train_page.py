"""/train in headless chromium against a real server: the numbers the page shows for the five
lines and the step buttons against the tutorial's loop run here in plain PyTorch, the pictures
carried over from /upload, a live training job read from its stream (curve, accuracy, the
weights downloaded and loaded), stopping a job, a busy server, the form's checks, both languages
and phone width.

SCREENSHOTS=1 also rewrites the README's pictures of the page in docs/screenshots/.
"""

import io
import math
import os
import queue
import re
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from app.model import CLASSES, Net
from app.training.subset import load_subset
from app.web.pages import EXAMPLE_BATCH
from tests.browser.conftest import SHIPPED
from tests.browser.test_browser import CJK, READY, SHOTS, load, until
from tests.training.test_step import tutorial_loop
from tests.training.test_train import TutorialNet

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
GALLERY = ROOT / "static" / "gallery"
LN10 = math.log(10)
LIVE_GUARD_MS = 120_000  # a job's first run also decodes the subset; the machine may be busy
DONE = "!document.getElementById('live-done').hidden"
POINTS = "Number(document.querySelector('[data-chart=live-loss]').dataset.points || 0)"
STATE = "document.getElementById('live-form').dataset.state"


# --- The reference: the tutorial's Net and loop in plain PyTorch ------------------------------


def pixels(data: bytes) -> torch.Tensor:
    """A 32x32 RGB picture as the tutorial's transforms give it: ToTensor, then Normalize with
    mean 0.5 and std 0.5 per channel. (3, 32, 32) float32."""
    rgb = np.array(Image.open(io.BytesIO(data)).convert("RGB"))
    assert rgb.shape == (32, 32, 3)
    return (torch.from_numpy(rgb).permute(2, 0, 1).float() / 255 - 0.5) / 0.5


def served_net() -> nn.Module:
    """The tutorial's own Net class with the weights the server uses."""
    if SHIPPED.is_file():
        state = torch.load(SHIPPED, weights_only=True)
    else:  # the server fixture's random weights
        torch.manual_seed(0)
        state = Net().state_dict()
    net = TutorialNet()
    net.load_state_dict(state)
    return net


def five_lines(
    net: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, lr: float, steps: int
) -> tuple[list[float], dict[str, float]]:
    """The tutorial's loop (tests/training/test_step.py) with its momentum, 0.9: the losses
    before each step and after the last, and each parameter's gradient norm at the first step."""
    done = tutorial_loop(net, inputs, labels, lr, 0.9, steps)
    norms = {name: float(torch.linalg.vector_norm(g)) for name, g in done["grads"].items()}
    return done["losses"], norms


def tutorial_batch() -> tuple[torch.Tensor, torch.Tensor]:
    inputs = torch.stack([pixels((GALLERY / name).read_bytes()) for name in EXAMPLE_BATCH])
    labels = torch.tensor([CLASSES.index(name.split("-")[0]) for name in EXAMPLE_BATCH])
    return inputs, labels


def shown(page: Any, testid: str) -> float:
    """A loss the page shows: its full value (data-value), which its text rounds."""
    value = float(page.get_attribute(f"[data-testid={testid}]", "data-value"))
    text = float(page.inner_text(f"[data-testid={testid}]").replace("−", "-"))
    assert text == pytest.approx(value, abs=5.1e-5)
    return value


# --- Training step --------------------------------------------------------------------------------


@pytest.fixture
def no_torch_threads() -> Iterator[None]:
    """The reference on one thread, as the server runs /step: the same float32 sums."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_five_lines_show_what_pytorch_computes(
    open_page: Any, server: str, no_torch_threads: None
) -> None:
    watched = open_page()
    page = load(watched, server, "/train")
    inputs, labels = tutorial_batch()
    losses, norms = five_lines(served_net(), inputs, labels, lr=0.001, steps=1)

    # 2 and 3: the outputs of four pictures, and their mean loss.
    assert page.locator("[data-role=outputs] tbody tr").count() == 4
    assert shown(page, "step-loss") == pytest.approx(losses[0], abs=1e-5)
    # The question's bug, as this torch raises it.
    with torch.no_grad():
        outputs = served_net()(inputs)
    with warnings.catch_warnings(), pytest.raises(RuntimeError) as raised:
        warnings.simplefilter("ignore")  # size_average is deprecated
        nn.CrossEntropyLoss(outputs, labels)
    assert page.inner_text("[data-role=mistake]") == f"RuntimeError: {raised.value}"
    # 4: the checks the page makes agree, and the gradient norms are torch's.
    assert page.locator(".line-card .verdict.ok").count() == 3
    assert page.locator(".line-card .verdict.bad").count() == 0
    rows = page.eval_on_selector_all(
        "[data-role=norms] tbody tr",
        "rows => rows.map(r => [r.cells[0].textContent, r.cells[1].textContent])",
    )
    assert [name for name, _ in rows] == list(norms)
    for name, text in rows:
        assert float(text) == pytest.approx(norms[name], rel=6e-3), name
    # 5: the loss after the step, on the same batch.
    assert shown(page, "step-loss-after") == pytest.approx(losses[1], abs=1e-5)
    # The loss at initialisation: torch.manual_seed(0); Net() on the same batch, about ln 10.
    torch.manual_seed(0)
    fresh, _ = five_lines(TutorialNet(), inputs, labels, lr=0.001, steps=1)
    assert shown(page, "fresh-loss") == pytest.approx(fresh[0], abs=1e-5)
    assert fresh[0] == pytest.approx(LN10, abs=0.1)

    # Another learning rate runs the step again: the update is lr times larger.
    page.fill("#step-lr", "0.01")
    faster, _ = five_lines(served_net(), inputs, labels, lr=0.01, steps=1)
    until(
        page,
        f"Math.abs(Number(document.querySelector('[data-testid=step-loss-after]')"
        f".dataset.value) - {faster[1]}) < 1e-5",
    )
    assert watched.errors == [] and watched.foreign == []


def test_step_buttons_overfit_one_batch_or_diverge(
    open_page: Any, server: str, no_torch_threads: None
) -> None:
    watched = open_page()
    page = load(watched, server, "/train")
    inputs, labels = tutorial_batch()
    verdict = "document.querySelector('[data-role=verdict]')"

    losses, _ = five_lines(served_net(), inputs, labels, lr=0.001, steps=10)
    page.focus("[data-steps='10']")
    page.keyboard.press("Enter")  # the buttons work from the keyboard
    until(page, f"{verdict}.dataset.kind !== undefined")
    assert page.get_attribute("[data-role=verdict]", "data-kind") == "ok"  # falls towards 0
    last = float(page.get_attribute("[data-role=verdict]", "data-last"))
    assert last == pytest.approx(losses[-1], rel=1e-3)
    assert losses[-1] < 0.1 * losses[0]

    page.fill("#many-lr", "0.1")
    losses, _ = five_lines(served_net(), inputs, labels, lr=0.1, steps=50)
    page.click("[data-steps='50']")
    until(page, f"{verdict}.dataset.kind === 'bad'")
    # torch blows up too: with the shipped weights lr 0.1 throws the loss up by orders of
    # magnitude (to NaN or, once its ReLUs die, back to a constant guess's loss)
    assert not all(map(math.isfinite, losses)) or max(losses) > 100 * losses[0]
    assert page.locator("[data-chart=many] .scatterlayer .trace").count() == 2
    assert watched.errors == [] and watched.foreign == []


def noise_png(seed: int) -> bytes:
    """A 32x32 RGB PNG, which /upload and /step take pixel for pixel."""
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def test_pictures_from_upload_are_carried_over(
    open_page: Any, server: str, no_torch_threads: None
) -> None:
    watched = open_page(locale="zh-CN")
    page = load(watched, server, "/upload", "?lang=zh-CN")
    files = [noise_png(1), noise_png(2)]
    uploads = [
        {"name": f"noise-{k}.png", "mimeType": "image/png", "buffer": b}
        for k, b in enumerate(files)
    ]
    page.set_input_files("#file-input", uploads)
    until(page, "document.querySelectorAll('.result dd').length === 6")
    page.select_option("#label-0", "3")
    until(
        page,
        "document.querySelector('.result:first-child .result-facts dd:nth-of-type(2)')"
        ".textContent === '猫'",
    )
    kept = page.evaluate("sessionStorage.getItem('ce-explainer.batch.v1')")
    assert len(kept) < 20_000  # the 32x32 pictures, not the uploads

    page.goto(server + "/train?lang=zh-CN")
    until(page, READY["/train"], timeout=20_000)
    assert "2" in page.inner_text("[data-role=yours-label]")
    page.check("#source-yours")
    until(page, "document.querySelectorAll('[data-role=outputs] tbody tr').length === 2")
    inputs = torch.stack([pixels(b) for b in files])
    net = served_net()
    with torch.no_grad():
        guess = int(net(inputs[1:]).argmax())
    # The second picture had no label: the network's guess stands in, and the page says so.
    assert page.input_value("#yours-label-1") == str(guess)
    assert page.locator("#batch-pictures .hint:visible").count() == 1
    losses, _ = five_lines(net, inputs, torch.tensor([3, guess]), lr=0.001, steps=1)
    assert shown(page, "step-loss") == pytest.approx(losses[0], abs=1e-5)

    other = (guess + 1) % 10
    page.select_option("#yours-label-1", str(other))
    losses, _ = five_lines(served_net(), inputs, torch.tensor([3, other]), lr=0.001, steps=1)
    until(
        page,
        f"Math.abs(Number(document.querySelector('[data-testid=step-loss]')"
        f".dataset.value) - {losses[0]}) < 1e-5",
    )
    assert page.locator("#batch-pictures .hint:visible").count() == 0
    assert watched.errors == [] and watched.foreign == []


# --- Train from scratch ---------------------------------------------------------------------------


def start_when_free(page: Any) -> None:
    """Press Start until the server takes the job: a job just stopped may hold the slot for the
    step it is in, and the page then says the server is busy."""
    for _ in range(100):
        page.click("#live-start")
        until(page, f"{STATE} === 'running' || {DONE} || {STATE} === 'idle'", timeout=LIVE_GUARD_MS)
        if page.evaluate(f"{STATE} === 'running' || {DONE}"):
            return
    raise AssertionError("the server stayed busy")


def test_live_job_draws_its_curve_and_its_weights_load(open_page: Any, server: str) -> None:
    watched = open_page()
    page = load(watched, server, "/train")
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.post_data or "") if "/train/live" in r.url else None)
    page.fill("#live-epochs", "1")
    page.fill("#live-batch", "64")
    start_when_free(page)
    until(page, f"{POINTS} > 0", timeout=LIVE_GUARD_MS)
    until(page, DONE, timeout=LIVE_GUARD_MS)
    assert sent[-1] == '{"epochs":1,"batch_size":64,"lr":0.02}'
    curve = page.evaluate("document.querySelector('[data-chart=live-loss]').data[0].y")
    total = int(page.get_attribute("#live-progress", "max"))
    assert total == math.ceil(5000 / 64)
    assert len(curve) == total  # every batch loss, drawn
    assert curve[0] == pytest.approx(LN10, abs=0.15)  # starts at a guess among 10 classes
    assert np.mean(curve[-10:]) < curve[0]
    assert "ln 10" in page.inner_text("[data-chart=live-loss]")
    rows = page.locator("#live-epochs-table tbody tr")
    assert rows.count() == 2  # untrained, then after epoch 1
    accuracy = float(rows.nth(1).locator("td").first.inner_text().rstrip("%")) / 100
    assert page.locator("#live-samples .sample").count() == 4
    assert page.get_attribute("#live-progress", "value") == page.get_attribute(
        "#live-progress", "max"
    )

    # The weights: the state_dict the tutorial's code loads, with the accuracy the page shows.
    with page.expect_download() as download:
        page.click("#live-download")
    path = download.value.path()
    net = TutorialNet()  # the tutorial's code loads them
    net.load_state_dict(torch.load(path, weights_only=True))
    images, labels = load_subset("test")
    with torch.no_grad():
        predicted = net((images.float() / 255 - 0.5) / 0.5).argmax(1)
    # To the page's 0.1%, or one picture more: the server evaluates in batches, channels-last.
    assert float((predicted == labels).float().mean()) == pytest.approx(accuracy, abs=0.0016)
    assert watched.errors == [] and watched.foreign == []


@pytest.mark.parametrize(
    ("lang", "busy", "stopped"),
    [("en", "try again in", "Stopped after step"), ("zh-CN", "秒后重试", "步后停止")],
)
def test_busy_server_and_stop(
    open_page: Any, server: str, lang: str, busy: str, stopped: str
) -> None:
    watched = open_page(width=390, locale=lang)
    page = load(watched, server, "/train", "?lang=" + lang)
    # Another client's job holds the server: the page says so in its language, with the wait.
    answers: queue.Queue[int] = queue.Queue()
    release = threading.Event()

    def hold() -> None:
        with httpx.stream("POST", server + "/train/live", json={"epochs": 20}, timeout=60) as r:
            if r.status_code != 200:
                answers.put(r.status_code)
                return
            for line in r.iter_lines():
                if line.startswith("event: progress"):
                    answers.put(r.status_code)
                    release.wait(60)
                    return

    for _ in range(200):  # until an earlier job, stopped, has let go of the server
        thread = threading.Thread(target=hold, daemon=True)
        thread.start()
        if answers.get(timeout=LIVE_GUARD_MS / 1000) == 200:
            break
        thread.join()
    else:
        raise AssertionError("the server stayed busy")
    page.click("#live-start")
    until(page, "document.getElementById('live-status').classList.contains('error')")
    message = page.inner_text("#live-status")
    assert busy in message and re.search(r"\d+", message), message
    assert page.evaluate(STATE) == "idle"
    release.set()
    thread.join()

    # Its client gone, that job stops; this page's job starts, and stops when asked.
    page.fill("#live-epochs", "20")
    start_when_free(page)
    until(page, f"{POINTS} > 0", timeout=LIVE_GUARD_MS)
    page.click("#live-stop")
    until(page, f"{STATE} === 'idle'")
    assert stopped in page.inner_text("#live-status")
    assert page.locator("#live-done").is_hidden()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"/train scrolls sideways at 390 px: {width}"
    # Chromium logs every 4xx answer to the console, the 429s the page was shown included.
    busy_answers = [e for e in watched.errors if "status of 429" in e]
    assert len(busy_answers) >= 1
    assert [e for e in watched.errors if e not in busy_answers] == []
    assert watched.foreign == []


def test_live_form_checks_its_fields_before_sending(open_page: Any, server: str) -> None:
    watched = open_page(locale="zh-CN")
    page = load(watched, server, "/train", "?lang=zh-CN")
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "/train/live" in r.url else None)
    page.fill("#live-epochs", "0")
    page.fill("#live-batch", "2.5")
    page.fill("#live-lr", "-1")
    page.focus("#live-lr")
    page.keyboard.press("Enter")  # submits the form
    until(page, "document.querySelector('[data-error-for=live-lr]').textContent.length > 0")
    for field in ("live-epochs", "live-batch", "live-lr"):
        assert page.get_attribute(f"#{field}", "aria-invalid") == "true"
        assert CJK.search(page.inner_text(f"[data-error-for={field}]"))
    assert page.evaluate("document.activeElement.id") == "live-epochs"  # the first wrong field
    assert sent == []
    assert watched.errors == [] and watched.foreign == []


# --- Screenshots ----------------------------------------------------------------------------------


@pytest.mark.skipif(os.environ.get("SCREENSHOTS") != "1", reason="SCREENSHOTS=1 rewrites them")
def test_train_screenshots(open_page: Any, server: str) -> None:
    def shoot(page: Any, name: str, width: int, top: str, height: int) -> None:
        y = page.eval_on_selector(top, "e => e.getBoundingClientRect().top + scrollY") - 12
        clip = {"x": 0, "y": y, "width": width, "height": height}
        page.screenshot(path=SHOTS / f"{name}.png", full_page=True, clip=clip)

    page = load(open_page(width=1280), server, "/train")
    page.fill("#many-lr", "0.01")
    page.click("[data-steps='50']")
    until(page, "document.querySelector('[data-role=verdict]').dataset.kind !== undefined")
    shoot(page, "train", 1280, "#line-4", 2000)
    start_when_free(page)
    until(page, DONE, timeout=LIVE_GUARD_MS)
    shoot(page, "train-live", 1280, "#scratch-h", 1500)
