"""The places where a learner was misled, stuck or lost work (issue 12), each as used in chromium.

Every test here failed on the code before its fix."""

from typing import Any

import pytest

from tests.browser.test_browser import LOSS, load, picture, until

pytestmark = pytest.mark.browser

PNG = picture("PNG", (60, 120, 230))
RESULTS = "document.getElementById('upload-loss').textContent.trim().length > 0"


def visible_text(page: Any, selector: str) -> str:
    """The text of the elements matching `selector` that are shown."""
    return page.eval_on_selector_all(
        selector, "els => els.filter(e => e.offsetParent !== null).map(e => e.innerText).join(' ')"
    )


def run_gallery_picture(page: Any, k: int = 0) -> None:
    page.locator(".gallery-item").nth(k).click()
    until(page, RESULTS)


def test_label_smoothing_changes_the_stage_texts_and_routes(open_page: Any, server: str) -> None:
    """Item 1: with ε > 0 the texts speak of a spread target; the shortcut does not apply (not
    "differ"); the upload page has the fifth route, F.cross_entropy on this picture."""
    watched = open_page()
    page = load(watched, server, "/upload")
    run_gallery_picture(page)
    until(page, "document.querySelectorAll('.checks dt').length === 5")
    assert "zero in every row except" in visible_text(page, "#stage-8 .stage-text")
    assert page.locator(".checks .verdict.bad").count() == 0
    page.fill("#opt-smoothing", "0.1")
    page.dispatch_event("#opt-smoothing", "change")
    until(page, "document.querySelector('#stage-8 [data-when=spread]').hidden === false")
    until(page, "document.querySelectorAll('.checks dt').length === 5")
    assert "zero in every row except" not in visible_text(page, "#stage-8 .stage-text")
    assert "every row of y · log p counts" in visible_text(page, "#stage-8 .stage-text")
    assert "one-hot" not in visible_text(page, "#stage-7 h3")
    assert "softmax minus the target" in visible_text(page, "#grad-h")
    assert page.locator(".checks .verdict.bad").count() == 0
    assert page.locator(".checks .verdict.na").count() == 1
    assert "F.cross_entropy on this picture" in page.inner_text(".checks")
    # Stage 9: all ten classes have target mass, each on the curve.
    points = page.evaluate("document.querySelector('[data-chart=s9]').data[1].x.length")
    assert points == 10
    assert watched.errors == [] and watched.foreign == []


def test_nan_from_both_is_agreement(open_page: Any, server: str) -> None:
    """Item 2: weight 0 on the target: 'mean' divides by 0, the loss is NaN, and so is
    PyTorch's: that is agreement, not "differ"."""
    watched = open_page()
    page = load(watched, server, "/sandbox", "?z=1,2,3&t=0&w=0,1,1")
    assert page.inner_text(LOSS) == "NaN"
    check = page.inner_text("#loss-check")
    assert "NaN" in check and "✓" in check and "✗" not in check
    assert watched.errors == [] and watched.foreign == []


def test_a_loss_without_a_true_label_is_not_a_grade(open_page: Any, server: str) -> None:
    """Item 5: with no true label the target is the prediction; the page says the loss is not a
    grade and invites the learner to set the label, on the card and beside the stages."""
    watched = open_page()
    page = load(watched, server, "/upload")
    page.set_input_files(
        "#file-input", [{"name": "sky.png", "mimeType": "image/png", "buffer": PNG}]
    )
    until(page, RESULTS)
    for where in (".result", "[data-role=focus]"):
        note = page.inner_text(where + " .note")
        assert "not whether it is right" in note and "none of them" in note
    page.select_option("#label-0", "3")
    until(page, "document.querySelector('.result .note') === null")
    assert page.locator("[data-role=focus] .note").count() == 0
    assert watched.errors == [] and watched.foreign == []
