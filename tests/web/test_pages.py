"""The HTML pages, in process: languages, headers, static assets, escaping, no external URLs."""

import gzip
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.web.assets import STATIC_DIR, asset_url, load_assets
from app.web.i18n import CATALOGUE, js_strings, negotiate

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
PAGES = ["/", "/upload", "/sandbox", "/model"]
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
CJK = re.compile(r"[\u4e00-\u9fff]")


def get(client: TestClient, path: str, **headers: str):
    response = client.get(path, headers={**HTML, **headers})
    assert response.status_code == 200, (path, response.text[:300])
    assert response.headers["content-type"].startswith("text/html")
    return response


def h1_text(html: str) -> str:
    match = re.search(r"<h1[^>]*>(.*?)</h1>", html, re.S)
    assert match, "page has no <h1>"
    return re.sub(r"<[^>]+>", "", match.group(1))


@pytest.mark.parametrize("path", PAGES)
def test_each_page_in_both_languages(client: TestClient, path: str) -> None:
    english = get(client, path + "?lang=en").text
    chinese = get(client, path + "?lang=zh-CN").text
    assert '<html lang="en">' in english
    assert '<html lang="zh-CN">' in chinese
    assert not CJK.search(h1_text(english))
    assert CJK.search(h1_text(chinese))
    # The switch offers both languages on every page.
    for html in (english, chinese):
        assert 'hreflang="en"' in html and 'hreflang="zh-CN"' in html
        assert "English" in html and "简体中文" in html


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("fr-FR, zh;q=0.5", "zh-CN"),
        ("zh-Hans", "zh-CN"),
        ("zh-TW,en;q=0.1", "zh-CN"),
        ("de, fr;q=0.9", "en"),
        ("zh;q=0, en;q=0.2", "en"),
        ("*", "en"),
        ("", "en"),
    ],
)
def test_accept_language_negotiation(header: str, expected: str) -> None:
    assert negotiate(None, header) == expected


def test_query_lang_beats_accept_language() -> None:
    assert negotiate("en", "zh-CN") == "en"
    assert negotiate("zh-cn", "en") == "zh-CN"
    assert negotiate("klingon", "zh-CN") == "zh-CN"


def test_accept_language_header_picks_chinese(client: TestClient) -> None:
    response = get(client, "/", **{"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert '<html lang="zh-CN">' in response.text
    assert response.headers["content-language"] == "zh-CN"
    assert "Accept-Language" in response.headers["vary"]


def test_language_switch_keeps_the_query(client: TestClient) -> None:
    html = get(client, "/sandbox?z=1.5,-2&t=1&lang=en").text
    assert 'href="/sandbox?z=1.5%2C-2&amp;t=1&amp;lang=zh-CN"' in html
    assert 'href="/sandbox?z=1.5%2C-2&amp;t=1&amp;lang=en"' in html
    # An explicit choice is carried along by the navigation links.
    assert 'href="/upload?lang=en"' in html


def test_model_page_and_model_json_share_the_path(client: TestClient) -> None:
    assert "<html" in get(client, "/model").text
    card = client.get("/model", headers={"Accept": "application/json"})
    assert card.headers["content-type"].startswith("application/json")
    assert card.json()["parameters"] > 0


@pytest.mark.parametrize("path", PAGES)
def test_security_headers_on_html(client: TestClient, path: str) -> None:
    headers = get(client, path).headers
    csp = headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert "unsafe-eval" not in csp
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"


def test_json_answers_get_nosniff_but_no_csp(client: TestClient) -> None:
    response = client.get("/classes")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in response.headers


@pytest.mark.parametrize("path", PAGES)
def test_no_inline_script_or_handler(client: TestClient, path: str) -> None:
    html = get(client, path + "?lang=zh-CN").text
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    for block in re.findall(r'<script type="application/json"[^>]*>(.*?)</script>', html, re.S):
        assert "<" not in block  # tojson escapes <, so the data block cannot close itself early
    assert not re.search(r"\son[a-z]+\s*=", html, re.I)
    assert "javascript:" not in html.lower()


def test_query_strings_are_escaped(client: TestClient) -> None:
    attack = "<script>alert(1)</script>"
    html = client.get(
        "/sandbox", params={"z": attack, "name": attack, "lang": attack}, headers=HTML
    ).text
    assert attack not in html
    assert "<script>alert" not in html


def test_uploaded_filename_is_never_html(client: TestClient) -> None:
    from tests.conftest import image_bytes

    name = "<script>alert(1)</script>.png"
    response = client.post("/predict", files=[("image", (name, image_bytes(), "image/png"))])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["x-content-type-options"] == "nosniff"
    # The pages put names into the DOM with textContent only.
    for script in (STATIC_DIR / "js").glob("*.js"):
        text = script.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in text, (script.name, sink)


def test_vendored_scripts_default_to_no_other_host() -> None:
    """plotly.js ships default URLs on plot.ly hosts (topojson for maps, Chart Studio); ours are
    blanked, and Swagger UI's validator badge, an image from validator.swagger.io, is off."""
    plotly = (STATIC_DIR / "vendor" / "plotly" / "plotly-cartesian.min.js").read_text()
    assert re.findall(r'dflt:"https?://', plotly) == []
    assert 'topojsonURL:{valType:"string",noBlank:!0,dflt:""}' in plotly
    assert 'plotlyServerURL:{valType:"string",dflt:""}' in plotly
    init = (STATIC_DIR / "vendor" / "swagger-ui" / "init.js").read_text()
    assert re.search(r"^\s*validatorUrl: null,$", init, re.MULTILINE)


def test_no_external_urls_in_our_files() -> None:
    allowed = re.compile(r"https?://www\.w3\.org/")
    files = [p for p in TEMPLATES.rglob("*") if p.is_file()]
    files += [p for p in STATIC_DIR.rglob("*") if p.is_file() and "vendor" not in p.parts]
    offenders = []
    for path in files:
        if path.suffix in {".jpg", ".png"}:
            continue
        for url in re.findall(r"https?://[^\s\"'<>)]+", path.read_text()):
            if not allowed.match(url):
                offenders.append(f"{path.relative_to(ROOT)}: {url}")
    assert not offenders


def test_static_assets_gzip_and_cache(client: TestClient) -> None:
    url = asset_url("js/common.js")
    assert re.fullmatch(r"/static/js/common\.js\?v=[0-9a-f]{16}", url)
    plain = (STATIC_DIR / "js" / "common.js").read_bytes()

    zipped = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert zipped.status_code == 200
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert zipped.headers["content-type"].startswith("text/javascript")
    assert "Accept-Encoding" in zipped.headers["vary"]
    assert zipped.content == plain  # httpx decodes it
    assert int(zipped.headers["content-length"]) < len(plain) / 2

    identity = client.get(url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in identity.headers
    assert identity.content == plain

    etag = zipped.headers["etag"]
    again = client.get(url, headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""

    stale = client.get("/static/js/common.js?v=0000000000000000")
    assert stale.headers["cache-control"] == "public, max-age=0, must-revalidate"
    assert client.head(url).status_code == 200


def test_static_assets_refuse_what_is_not_there(client: TestClient) -> None:
    missing = client.get("/static/nope.js")
    assert missing.status_code == 404 and missing.json()["detail"] == "no such static file"
    assert client.get("/static/../app/main.py").status_code == 404
    assert client.get("/static/%2e%2e/app/main.py").status_code == 404
    assert client.post(asset_url("js/common.js")).status_code == 405


def test_first_load_of_the_explainer_fits_the_budget(client: TestClient) -> None:
    """HTML plus everything it references, gzipped as served, plus the bundled pictures."""
    html = get(client, "/", **{"Accept-Encoding": "gzip"}).text
    assets = load_assets(STATIC_DIR)
    total = len(gzip.compress(html.encode()))
    urls = set(re.findall(r'(?:src|href)="(/static/[^"?]+)\?v=', html))
    urls |= set(re.findall(r'(/static/gallery/[^"?]+)\?v=', html))
    for url in urls:
        asset = assets[url.removeprefix("/static/")]
        total += len(asset.gzipped or asset.body)
    assert total <= 1_500_000, total


def test_catalogue_is_complete() -> None:
    for key, (english, chinese) in CATALOGUE.items():
        assert english.strip() and chinese.strip(), key
    used = set()
    for path in TEMPLATES.rglob("*.html"):
        used |= set(re.findall(r"""\bt\(\s*["']([\w.]+)["']\s*[,)]""", path.read_text()))
    missing = sorted(k for k in used if k not in CATALOGUE)
    assert not missing
    strings = js_strings("zh-CN")
    for script in (STATIC_DIR / "js").glob("*.js"):
        keys = set(re.findall(r"""\bs\(\s*"(\w+)"\s*[,)]""", script.read_text()))
        assert not sorted(k for k in keys if k not in strings), script.name


@pytest.mark.parametrize("path", ["/", "/upload", "/sandbox"])
def test_pages_answer_head(client: TestClient, path: str) -> None:
    r = client.head(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
