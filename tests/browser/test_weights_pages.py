"""Your own weights in the pages: a state_dict made here, picked on /upload, runs beside the
shipped Net and gives plain PyTorch's numbers; /model shows its /evaluate card beside ours; a
refused file shows its error by the picker; both languages, phone width, every control labelled.

WEIGHTS_SHOTS=<folder> also saves screenshots there.
"""

import base64
import hashlib
import io
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from tests.browser.test_browser import CJK, UNLABELLED, load, until
from tests.training.test_train import TutorialNet

pytestmark = pytest.mark.browser

# Chromium logs every 4xx answer to a fetch as a console error of its own; the refused file's
# 422 is the one the test asks for, so that line alone is allowed.
REFUSED_LOG = re.compile(r"^Failed to load resource: the server responded with a status of 422")


def number(text: str) -> float:
    return float(text.strip().replace("−", "-"))


def shoot(page: Any, name: str) -> None:
    folder = os.environ.get("WEIGHTS_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def pick(page: Any, name: str, data: bytes) -> None:
    page.set_input_files(
        "#weights-input", {"name": name, "mimeType": "application/octet-stream", "buffer": data}
    )


def seen_by_the_net(data_url: str) -> torch.Tensor:
    """The 32x32 picture the server ran (its preview PNG), normalised as the tutorial does."""
    png = base64.b64decode(data_url.split(",", 1)[1])
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32)
    x = torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0) / 255.0
    return (x - 0.5) / 0.5


def no_overflow(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"scrolls sideways at 390 px: {width}"


@pytest.mark.parametrize(("lang", "width"), [("en", 1280), ("zh-CN", 390)])
def test_your_net_beside_ours_on_upload_and_model(
    open_page: Any, server: str, yours: tuple[TutorialNet, bytes], lang: str, width: int
) -> None:
    net, data = yours
    watched = open_page(width=width, locale=lang)
    page = load(watched, server, "/upload", "?lang=" + lang)
    assert bool(CJK.search(page.inner_text("#weights-h"))) == (lang == "zh-CN")
    pick(page, "cifar_net.pth", data)
    page.locator(".gallery-item").first.click()
    until(page, "document.querySelector('.weights-compare tfoot td[data-net=upload]') !== null")
    until(page, "document.getElementById('weights-picker').dataset.state === 'confirmed'")
    assert page.inner_text('[data-weights="sha256"]') == hashlib.sha256(data).hexdigest()
    assert page.inner_text('[data-weights="name"]') == "cifar_net.pth"

    # Your Net's column against the tutorial's Net run here on the picture the server saw.
    preview = page.get_attribute(".result-pics img[width='88']", "src")
    label = page.get_attribute(".gallery-item", "data-class")
    with torch.no_grad():
        logits = net(seen_by_the_net(preview))
    target = torch.tensor([page.evaluate("JSON.parse(document.getElementById('page-data')"
                                         ".textContent).classes").index(label)])  # fmt: skip
    rows = page.locator(".weights-compare tbody tr")
    assert rows.count() == 10
    cells = [[number(t) for t in rows.nth(c).locator("td").all_inner_texts()] for c in range(10)]
    ours_z, yours_z = [c[0] for c in cells], [c[2] for c in cells]
    yours_p = [c[3] for c in cells]
    assert yours_z == pytest.approx(logits[0].tolist(), abs=1.5e-4)
    assert yours_p == pytest.approx(F.softmax(logits, 1)[0].tolist(), abs=1.5e-4)
    assert ours_z != pytest.approx(yours_z, abs=1e-3)  # two different Nets
    loss = F.cross_entropy(logits, target).item()
    assert number(page.inner_text(".weights-compare tfoot td[data-net=upload]")) == pytest.approx(
        loss, abs=1.5e-4
    )
    # The batch loss of both: one picture, so each equals its per-picture loss.
    assert number(page.inner_text('[data-testid="yours-loss-value"]')) == pytest.approx(
        loss, abs=1.5e-4
    )
    assert number(page.inner_text('[data-testid="loss-value"]')) == number(
        page.inner_text(".weights-compare tfoot td[data-net=shipped]")
    )
    assert page.evaluate(UNLABELLED) == []
    if width == 390:
        no_overflow(page)
    shoot(page, f"upload-{lang}-{width}")

    # /model, same browser storage: your card beside ours, from /evaluate.
    page = load(watched, server, "/model", "?lang=" + lang)
    until(page, "document.getElementById('weights-cards').dataset.state === 'ready'", 30_000)
    until(
        page,
        "document.querySelectorAll('#weights-cards .js-plotly-plot').length === 4"
        " && document.querySelectorAll('#weights-cards .heatmaplayer').length === 2",
    )
    answer = page.request.post(
        server + "/evaluate",
        multipart={"weights": {"name": "w.pth", "mimeType": "x/y", "buffer": data}},
    ).json()
    upload = '[data-card="upload"] '
    shown = page.inner_text(upload + '[data-card-stat="accuracy"]')
    assert shown == f"{answer['test_accuracy'] * 100:.1f}%"
    assert number(page.inner_text(upload + '[data-card-stat="loss"]')) == pytest.approx(
        answer["mean_loss"], abs=1e-4
    )
    sha = hashlib.sha256(data).hexdigest()
    assert page.get_attribute('[data-card="upload"]', "data-sha256") == sha
    assert page.get_attribute('[data-card="shipped"]', "data-sha256") != sha
    assert bool(CJK.search(page.inner_text("#weights-cards-h"))) == (lang == "zh-CN")
    # The shipped card (figures embedded by the server) stays as it is.
    assert page.locator("[data-figure].js-plotly-plot").count() >= 2
    assert page.evaluate(UNLABELLED) == []
    if width == 390:
        no_overflow(page)
    shoot(page, f"model-{lang}-{width}")

    # Forget: the cards go, and /upload runs the shipped Net alone.
    page.click("#weights-forget")
    until(page, "document.getElementById('weights-cards').hidden")
    assert watched.errors == [] and watched.foreign == []


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_a_refused_file_shows_its_error_by_the_picker(
    open_page: Any, server: str, lang: str
) -> None:
    watched = open_page(width=390, locale=lang)
    page = load(watched, server, "/model", "?lang=" + lang)
    pick(page, "junk.pth", b"not a state_dict at all")
    until(page, "!document.getElementById('weights-error').hidden")
    error = page.inner_text("#weights-error")
    assert "junk.pth" in error  # the server's detail names the file...
    assert bool(CJK.search(error)) == (lang == "zh-CN")  # ...after a line in the page's language
    until(page, "document.getElementById('weights-picker').dataset.state === 'none'")
    assert page.locator("#weights-cards").is_hidden()
    # Over the cap: refused in the browser, before any request.
    pick(page, "big.pth", b"\0" * (2 * 1024 * 1024 + 1))
    until(page, "document.getElementById('weights-error').textContent.includes('2,048 KB')")
    no_overflow(page)
    shoot(page, f"refused-{lang}")
    assert [e for e in watched.errors if not REFUSED_LOG.match(e)] == []
    assert watched.foreign == []
