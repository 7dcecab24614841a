"""The places where a learner was misled, stuck or lost work (issue 12), each as used in chromium.

Every test here failed on the code before its fix."""

from typing import Any

import pytest

from tests.browser.test_browser import CJK, LOSS, load, picture, until

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
    assert "one-hot" not in visible_text(page, "#stage-7 :is(h3, h4)")
    assert "softmax minus the target" in visible_text(page, "#grad-h")
    assert page.locator(".checks .verdict.bad").count() == 0
    assert page.locator(".checks .verdict.na").count() == 1
    assert "F.cross_entropy on this picture" in page.inner_text(".checks")
    # Stage 9: all ten classes have target mass, each on the curve.
    # (charts are drawn as they come near the screen)
    page.locator("[data-chart=s9]").scroll_into_view_if_needed()
    until(page, "document.querySelectorAll('[data-chart=s9] circle').length === 10")
    assert watched.errors == [] and watched.foreign == []


def test_nan_from_both_is_agreement(open_page: Any, server: str) -> None:
    """Item 2: weight 0 on the target: 'mean' divides by 0, the loss is NaN, and so is
    PyTorch's: that is agreement, not "differ"."""
    watched = open_page()
    page = load(watched, server, "/sandbox", "?z=1,2,3&t=0&w=0,1,1")
    assert page.inner_text(LOSS) == "NaN"
    check = page.inner_text("#verdict")  # the instrument: every stage against PyTorch's
    assert "✓" in check and "✗" not in check
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


def in_view(page: Any, selector: str) -> bool:
    return page.eval_on_selector(
        selector,
        "e => { const b = e.getBoundingClientRect(); return b.top >= -1 && b.top < innerHeight; }",
    )


@pytest.mark.parametrize(("width", "height"), [(390, 844), (1280, 900)])
def test_upload_results_come_into_view(
    open_page: Any, server: str, width: int, height: int
) -> None:
    """Item 7: a tap on a gallery picture brings the progress and the results into view, the
    status keeps saying what happened, and "→ Picture 2" shows its panel."""
    watched = open_page(width=width)
    page = watched.page
    page.set_viewport_size({"width": width, "height": height})
    load(watched, server, "/upload")
    run_gallery_picture(page, 3)
    until(page, "document.querySelectorAll('.result dd').length >= 3")
    assert in_view(page, ".result")
    assert "1" in page.inner_text("#upload-status")
    page.check("#add-mode")
    page.locator(".gallery-item").nth(5).click()
    until(page, "document.querySelectorAll('.result dd').length >= 6")
    page.locator(".result:nth-child(2) .result-actions button").first.click()
    until(page, "document.querySelector('[data-role=focus]').dataset.picture === '1'")
    assert in_view(page, "[data-role=focus]")
    assert watched.errors == [] and watched.foreign == []


def test_65_files_say_what_was_kept_and_the_gallery_runs_at_once(
    open_page: Any, server: str
) -> None:
    """Item 11: 65 files keep 64 and say so after the run; one button runs the whole gallery."""
    watched = open_page()
    page = load(watched, server, "/upload")
    files = [{"name": f"p{k}.png", "mimeType": "image/png", "buffer": PNG} for k in range(65)]
    page.set_input_files("#file-input", files)
    until(page, "document.querySelectorAll('.result dd').length === 64 * 3")
    assert "64" in page.inner_text("#upload-status") and "1" in page.inner_text("#upload-status")
    page.click("#run-gallery")
    until(page, "document.querySelectorAll('.result dd').length === 20 * 3")
    assert page.locator(".result .note").count() == 0  # every gallery picture is labelled
    assert watched.errors == [] and watched.foreign == []


def test_switching_language_keeps_the_batch(open_page: Any, server: str) -> None:
    """Item 12: the batch, its labels and options survive a language switch."""
    watched = open_page()
    page = load(watched, server, "/upload")
    page.set_input_files("#file-input", [{"name": "a.png", "mimeType": "image/png", "buffer": PNG}])
    until(page, RESULTS)
    page.check("#add-mode")
    run_gallery_picture(page, 2)
    until(page, "document.querySelectorAll('.result dd').length === 6")
    page.select_option("#label-0", "4")
    until(page, "document.querySelector('.result .note') === null")
    loss = page.inner_text(LOSS)
    page.click("[data-lang-link=zh-CN]")
    until(page, "document.querySelectorAll('.result dd').length === 6", timeout=20_000)
    assert page.input_value("#label-0") == "4"
    assert "a.png" in page.inner_text("#results")
    until(page, RESULTS)
    assert page.inner_text(LOSS) == loss
    assert watched.errors == [] and watched.foreign == []


def test_bad_smoothing_is_marked_in_the_form_and_heic_is_explained(
    open_page: Any, server: str
) -> None:
    """Items 9 and 13 in the form: ε = 1.5 is refused on the field in the page's language, not
    sent, and the stale charts are hidden; a HEIC file is named with what to do; the pixel
    limit and HEIC stand next to the drop zone."""
    watched = open_page()
    page = load(watched, server, "/upload", "?lang=zh-CN")
    assert "4000" in page.inner_text("#dropzone") or "40" in page.inner_text("#drop-hint")
    assert "HEIC" in page.inner_text("#dropzone")
    run_gallery_picture(page)
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    page.fill("#opt-smoothing", "1.5")
    page.dispatch_event("#opt-smoothing", "change")
    until(page, "document.getElementById('smoothing-error').hidden === false")
    assert page.get_attribute("#opt-smoothing", "aria-invalid") == "true"
    assert CJK.search(page.inner_text("#smoothing-error"))
    assert "loc" not in page.inner_text("#upload-status")
    assert page.locator("#after-results").is_hidden()
    assert sent == []
    page.fill("#opt-smoothing", "0.2")
    page.dispatch_event("#opt-smoothing", "change")
    until(page, RESULTS + " && !document.getElementById('after-results').hidden")
    heic = {"name": "IMG_0001.HEIC", "mimeType": "image/heic", "buffer": b"\0\0\0\x18ftypheic"}
    page.set_input_files("#file-input", heic)
    until(page, "document.getElementById('upload-status').textContent.includes('IMG_0001')")
    assert "JPEG" in page.inner_text("#upload-status")
    assert watched.errors == [] and watched.foreign == []
