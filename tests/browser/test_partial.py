"""/upload with a picture the server cannot use among good ones (issue 12, item 8): its error
stays on its card, the others are computed and shown; a bad option is caught in the form.

Each test here failed on the code before: one bad file wiped every prediction."""

import struct
import zlib
from typing import Any

import pytest

from tests.browser.test_browser import CJK, load, picture, until

pytestmark = pytest.mark.browser

GOOD = [
    {"name": f"{name}.png", "mimeType": "image/png", "buffer": picture("PNG", color)}
    for name, color in [("red", (200, 30, 30)), ("green", (30, 160, 60)), ("blue", (40, 60, 220))]
]
DONE = (
    "document.getElementById('upload-loss').textContent.trim().length > 0"
    " && !document.getElementById('after-results').hidden"
    " && document.querySelectorAll('.result dd').length === 9"
)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def declared_png(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height pixels and whose data is one row: the server
    refuses it from its header, as it does a 9000x6000 photo, without it being made here."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    row = zlib.compress(b"\0" * (1 + 3 * width))
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", row) + _chunk(b"IEND", b"")
    )


HUGE = {"name": "huge.png", "mimeType": "image/png", "buffer": declared_png(9000, 6000)}


def card(page: Any, k: int) -> Any:
    return page.locator(".result").nth(k)


def test_a_bad_file_keeps_its_error_on_its_card_and_the_rest_are_run(
    open_page: Any, server: str
) -> None:
    """Three photos and a 9000x6000 one: three cards with their prediction and loss, the fourth
    with the server's reason; the batch and the stages are of the three; removing the bad card
    leaves the batch loss as it was. Then ε = 1.5 is refused in the form, next to the field,
    and nothing is sent; ε = 0.1 runs again and the bad card keeps its error."""
    watched = open_page()
    page = load(watched, server, "/upload")
    assert "40 million pixels" in page.inner_text("#dropzone")
    page.set_input_files("#file-input", [*GOOD[:2], HUGE, GOOD[2]])
    until(page, DONE)

    assert page.locator(".result").count() == 4
    bad = card(page, 2)
    assert "is-refused" in (bad.get_attribute("class") or "")
    error = bad.locator(".result-error").inner_text()
    assert error.startswith("Left out of the batch:")
    assert "huge.png" in error and "too large" in error and "40,000,000 pixels" in error
    assert bad.locator("dd").count() == 0
    for k in (0, 1, 3):
        assert card(page, k).locator(".result-error").count() == 0
        assert card(page, k).locator("dd").count() == 3  # predicted, target, loss
    status = page.inner_text("#upload-status")
    assert "Pictures run: 3." in status and "1 left out" in status
    assert " / 3" in page.inner_text("[data-role=batch-formula]")
    assert page.locator("[data-role=picker] button").count() == 3
    # the batch /train is offered: the three pictures the network saw
    kept = "JSON.parse(sessionStorage.getItem('ce-explainer.batch.v1')).map(p => p.name)"
    assert page.evaluate(kept) == ["red.png", "green.png", "blue.png"]
    # the fourth card is the third row of the stages: its button shows that row
    card(page, 3).locator(".result-actions button").first.click()
    until(page, "document.querySelector('[data-role=focus]').dataset.picture === '2'")
    loss = page.inner_text("#upload-loss")
    per_card = [card(page, k).locator("dd.mono").inner_text() for k in (0, 1, 3)]

    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    page.fill("#opt-smoothing", "1.5")
    page.dispatch_event("#opt-smoothing", "change")
    until(page, "document.getElementById('smoothing-error').hidden === false")
    field_error = page.locator("#smoothing-error")
    assert field_error.inner_text() == "Label smoothing is a number from 0 to 1."
    assert (
        field_error.is_visible() and page.get_attribute("#opt-smoothing", "aria-invalid") == "true"
    )
    assert sent == []
    assert "huge.png" in card(page, 2).locator(".result-error").inner_text()
    page.fill("#opt-smoothing", "0")
    page.dispatch_event("#opt-smoothing", "change")
    until(page, DONE + " && document.getElementById('smoothing-error').hidden")
    assert page.inner_text("#upload-loss") == loss
    assert "huge.png" in card(page, 2).locator(".result-error").inner_text()

    card(page, 2).locator(".result-actions button").click()  # Remove: the only button it has
    until(page, "document.querySelectorAll('.result').length === 3 && " + DONE)
    assert page.locator(".result-error").count() == 0
    assert page.inner_text("#upload-loss") == loss
    assert [card(page, k).locator("dd.mono").inner_text() for k in range(3)] == per_card
    assert watched.errors == [] and watched.foreign == []


def test_in_chinese_the_card_says_it_in_chinese(open_page: Any, server: str) -> None:
    """The page's own words around the server's reason are in the page's language, and the
    drop zone states the pixel limit and that a bad file is marked on its card."""
    watched = open_page(locale="zh-CN")
    page = load(watched, server, "/upload", "?lang=zh-CN")
    dropzone = page.inner_text("#dropzone")
    assert "40 百万像素" in dropzone and "卡片" in dropzone
    junk = {"name": "notes.png", "mimeType": "image/png", "buffer": b"not a picture at all"}
    page.set_input_files("#file-input", [junk, *GOOD])
    until(page, DONE)
    error = card(page, 0).locator(".result-error").inner_text()
    assert error.startswith("未计入本批次") and "notes.png" in error
    assert CJK.search(page.inner_text("#upload-status"))
    assert watched.errors == [] and watched.foreign == []


def test_a_lone_bad_file_is_marked_on_its_card(open_page: Any, server: str) -> None:
    """Nothing to run: the server refuses the request (422), and the reason, which names the
    file, is on its card as well as in the status."""
    watched = open_page()
    page = load(watched, server, "/upload")
    page.set_input_files("#file-input", [HUGE])
    until(page, "document.querySelector('.result-error') !== null")
    assert "too large" in card(page, 0).locator(".result-error").inner_text()
    assert page.locator("#after-results").is_hidden()
    assert "huge.png" in page.inner_text("#upload-status")
    # the browser logs the 422 itself; nothing else
    assert all("422" in line for line in watched.errors), watched.errors
    assert watched.foreign == []
