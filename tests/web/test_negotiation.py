"""The one reader of Accept-* q-values, and the three decisions taken from it."""

import pytest

from app.web.negotiation import (
    Preference,
    accepts_gzip,
    preferences,
    prefers_html,
    prefers_npz,
    ranked_languages,
)


def test_preferences_reads_names_qualities_and_positions() -> None:
    header = "text/html;level=1;q=0.7, Application/JSON ;Q=0.9,, */*; q = 0.1 ,x;q=2,y;q=-1"
    assert preferences(header) == [
        Preference("text/html", 0.7, 0),
        Preference("application/json", 0.9, 1),
        Preference("*/*", 0.1, 3),
        Preference("x", 1.0, 4),  # out of range: clamped
        Preference("y", 0.0, 5),
    ]


@pytest.mark.parametrize("value", ["abc", "", "nan", "inf", "1e999"])
def test_a_quality_that_is_not_a_number_refuses(value: str) -> None:
    assert preferences(f"gzip;q={value}") == [Preference("gzip", 0.0, 0)]


@pytest.mark.parametrize("header", [None, "", " , ,"])
def test_no_header_has_no_preferences(header: str | None) -> None:
    assert preferences(header) == []


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.5", True),
        ("x-gzip", True),
        ("*", True),
        ("*;q=0.1, br", True),
        ("*, gzip;q=0", False),  # the coding named outright wins over the wildcard
        ("gzip;q=0, *", False),
        ("gzip;q=0, *;q=1, x-gzip;q=0", False),
        ("gzip;q=0, x-gzip;q=0.5", True),
        ("*;q=0", False),
        ("gzip;q=0", False),
        ("identity", False),
        ("deflate", False),
        ("", False),
        (None, False),
    ],
)
def test_accepts_gzip(header: str | None, accepted: bool) -> None:
    assert accepts_gzip(header) is accepted


@pytest.mark.parametrize(
    ("header", "html"),
    [
        ("text/html,application/xhtml+xml,*/*;q=0.8", True),
        ("application/json", False),
        ("text/html;q=0.5, application/json", False),
        ("text/html, application/json", True),  # a tie goes to the page
        ("application/json;q=0.1, text/html;q=0, text/html;q=0.2", True),
        ("text/html;q=0", False),
        ("*/*", False),
        (None, False),
    ],
)
def test_prefers_html(header: str | None, html: bool) -> None:
    assert prefers_html(header) is html


@pytest.mark.parametrize(
    ("header", "npz"),
    [
        ("application/x-npz", True),
        ("application/json;q=0.5, application/x-npz;q=0.6", True),
        ("application/x-npz;q=0.1, application/x-npz;q=0.9, application/json;q=0.5", True),
        ("application/json, application/x-npz", False),  # a tie keeps the default, JSON
        ("application/x-npz;q=0", False),
        ("application/x-npz;q=nope", False),
        ("*/*", False),
        ("text/html", False),
        (None, False),
    ],
)
def test_prefers_npz(header: str | None, npz: bool) -> None:
    assert prefers_npz(header) is npz


def test_ranked_languages_best_first_ties_in_order_refused_left_out() -> None:
    header = "fr;q=0.5, zh-CN, de;q=0, en-GB;q=0.5, *;q=0.1"
    assert ranked_languages(header) == ["zh-cn", "fr", "en-gb", "*"]
