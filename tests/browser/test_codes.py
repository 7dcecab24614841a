"""The server's errors and warnings on the Chinese pages, by their codes (issue 12, item 14), and a
field the server refused marked on the form with the stale views cleared (item 9)."""

import json
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_browser import CJK, load, until
from tests.browser.test_defects import RESULTS, run_gallery_picture

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.browser


def test_a_server_warning_is_shown_in_chinese(open_page: Any, server: str) -> None:
    """Weight 0 on the only target: 'mean' divides by 0, which the server says in English and
    codes as mean_zero_weight; the Chinese sandbox says it in Chinese."""
    watched = open_page()
    page = watched.page
    page.goto(server + "/sandbox?lang=zh-CN&z=1,2,3&t=0&w=0,1,1")
    # the server's warning, in whichever language the page shows it
    notes = "document.getElementById('notes').textContent"
    until(page, f"{notes}.includes('要除以 0') || {notes}.includes('divides by 0')", timeout=20_000)
    notes = page.inner_text("#notes")
    assert "'mean' 要除以 0" in notes, notes
    assert "divides by 0" not in notes
    assert watched.errors == [] and watched.foreign == []


def test_a_server_error_is_shown_in_chinese(open_page: Any, server: str) -> None:
    """A file that claims to be a PNG and is not: the server's not_an_image, in Chinese."""
    watched = open_page()
    page = load(watched, server, "/upload", "?lang=zh-CN")
    fake = {"name": "fake.png", "mimeType": "image/png", "buffer": b"this is not a picture" * 4}
    page.set_input_files("#file-input", fake)
    expected = "fake.png：不是 PNG、JPEG、GIF、WebP 或 BMP 图片。"
    until(page, f"document.body.innerText.includes({expected!r})", timeout=20_000)
    assert "not a PNG" not in page.inner_text("body")
    assert watched.foreign == []


def test_a_field_the_server_refuses_is_marked_and_the_views_cleared(
    open_page: Any, server: str
) -> None:
    """The server's 422 for label_smoothing (the request changed on its way, as a client other
    than the form could send it): a sentence in the page's language, not pydantic's list; the
    field marked; the last answer's charts, table and keys hidden, not left beside it."""
    watched = open_page()
    page = load(watched, server, "/upload", "?lang=zh-CN")
    run_gallery_picture(page)
    assert page.locator("#after-results").is_visible()

    def smoothing_15(route: Any) -> None:
        body = route.request.post_data_buffer
        field = b'name="label_smoothing"\r\n\r\n'
        start = body.index(field) + len(field)
        end = body.index(b"\r\n", start)
        route.continue_(post_data=body[:start] + b"1.5" + body[end:])

    page.route("**/predict", smoothing_15)
    page.select_option("#opt-reduction", "sum")
    until(page, "document.getElementById('opt-smoothing').getAttribute('aria-invalid') === 'true'")
    status = page.inner_text("#upload-status")
    assert "label_smoothing 的值无法使用" in status, status
    assert "loc" not in status and "[{" not in status
    assert page.locator("#smoothing-error").is_visible()
    assert CJK.search(page.inner_text("#smoothing-error"))
    assert page.locator("#after-results").is_hidden()
    # fixed: the next answer clears the mark
    page.unroute("**/predict")
    page.fill("#opt-smoothing", "0.1")
    page.dispatch_event("#opt-smoothing", "change")
    until(page, RESULTS + " && !document.getElementById('after-results').hidden")
    assert page.get_attribute("#opt-smoothing", "aria-invalid") == "false"


def test_the_model_cards_training_details_are_in_chinese(open_page: Any, server: str) -> None:
    """The shipped card's augmentation and schedule, and the training time's unit."""
    watched = open_page()
    page = load(watched, server, "/model", "?lang=zh-CN")
    until(page, "document.getElementById('training').textContent.length > 0")
    training = page.inner_text("#training")
    assert "随机平移" in training and "余弦" in training and "分钟" in training, training
    assert "random translation" not in training and " min" not in training
    # the time per epoch and the threads it was measured on, from the metrics beside the weights
    metrics = json.loads((ROOT / "app" / "weights" / "cifar_net.json").read_text())
    assert f"每轮用时\n{metrics['seconds_per_epoch']:.1f} 秒" in training, training
    assert f"PyTorch 线程数\n{metrics['torch_threads']}" in training, training
