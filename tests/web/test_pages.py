"""The HTML pages, in process: languages and their catalogues, headers, static assets and their
modules, escaping, no external URLs."""

import gzip
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient

from app.model import CLASSES
from app.training import figures
from app.web import pages
from app.web.assets import IMPORT, STATIC_DIR, asset_url, link_modules, load_assets
from app.web.i18n import CLASS_NAMES, JS_MESSAGES, LOCALE_DIR, LOCALES, negotiate
from app.web.pages import templates
from app.web.settings import Settings
from tests.conftest import build_app

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
SHIPPED_METRICS = ROOT / "app" / "weights" / "cifar_net.json"
PAGES = ["/", "/upload", "/sandbox", "/train", "/model"]
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
    """HTML plus everything it references, the modules its module imports included, gzipped as
    served, plus the bundled pictures."""
    html = get(client, "/", **{"Accept-Encoding": "gzip"}).text
    assets = load_assets(STATIC_DIR)
    total = len(gzip.compress(html.encode()))
    urls = set(re.findall(r'(?:src|href)="/static/([^"?]+)\?v=', html))
    urls |= set(re.findall(r'/static/(gallery/[^"?]+)\?v=', html))
    todo = [u for u in urls if u.startswith("js/")]
    while todo:  # the modules that the page's module imports, and theirs
        body = assets[todo.pop()].body.decode()
        for match in IMPORT.finditer(body):
            rel = "js/" + match["spec"].removeprefix("./").split("?")[0]
            if rel not in urls:
                urls.add(rel)
                todo.append(rel)
    assert {"js/index.js", "js/common.js", "js/stages.js"} <= urls
    for url in urls:
        asset = assets[url]
        total += len(asset.gzipped or asset.body)
    assert total <= 1_500_000, total


def figure_blocks(html: str) -> dict[str, dict]:
    found = re.findall(r'<script type="application/json" id="figure-([\w-]+)">(.*?)</script>', html)
    assert all("<" not in block for _, block in found)
    return {name: json.loads(block) for name, block in found}


@pytest.mark.parametrize(
    ("lang", "first_class", "epoch"), [("en", "airplane", "epoch"), ("zh-CN", "飞机", "轮次")]
)
def test_model_card_embeds_its_figures_in_the_page_language(
    settings: Settings, tmp_path: Path, lang: str, first_class: str, epoch: str
) -> None:
    """The per-class accuracy, the confusion matrix and the training curves, built in Python
    from the metrics beside the weights, as JSON data that model.js draws."""
    metrics = json.loads(SHIPPED_METRICS.read_text())
    with TestClient(build_app(settings.model_copy(update={"metrics": SHIPPED_METRICS}))) as c:
        shown = figure_blocks(get(c, "/model?lang=" + lang).text)
    assert set(shown) == {"per-class", "confusion", "curves"}
    bars = shown["per-class"]["data"][0]
    assert bars["x"] == list(metrics["per_class_accuracy"].values())
    assert bars["y"][0] == first_class
    assert shown["confusion"]["data"][0]["z"] == metrics["confusion_matrix"]
    curves = shown["curves"]
    assert curves["data"][0]["y"] == metrics["history"]["train_loss"]
    assert curves["layout"]["xaxis"]["title"]["text"] == epoch

    # Metrics without a per-epoch history: no curves; no metrics at all: no figures.
    bare = tmp_path / "bare.json"
    bare.write_text(
        json.dumps({k: v for k, v in metrics.items() if k not in ("history", "epochs")})
    )
    with TestClient(build_app(settings.model_copy(update={"metrics": bare}))) as c:
        assert set(figure_blocks(get(c, "/model?lang=" + lang).text)) == {"per-class", "confusion"}
    with TestClient(
        build_app(settings.model_copy(update={"metrics": tmp_path / "none.json"}))
    ) as c:
        html = get(c, "/model?lang=" + lang).text
    assert figure_blocks(html) == {} and 'id="model-status"' in html


def test_figure_labels_are_the_figures_own() -> None:
    """pages.FIGURE_TEXT spells out figures.FIGURE_TEXT's English so that pybabel can see it."""
    english = {k: v for k, v in figures.FIGURE_TEXT.items() if not k.startswith("class.")}
    assert english == pages.FIGURE_TEXT


# --- The catalogues ------------------------------------------------------------------------------

PO = {lang: LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po" for lang, locale in LOCALES.items()}


def po(lang: str) -> Catalog:
    with PO[lang].open("rb") as f:
        return read_po(f)


def text(value: object) -> str:
    """A msgid or msgstr as one string (plural forms joined with a NUL)."""
    return "\0".join(value) if isinstance(value, tuple | list) else str(value or "")


def messages(catalog: Catalog) -> dict[str, str]:
    """msgid -> msgstr of every message but the header."""
    return {text(m.id): text(m.string) for m in catalog if m.id}


def test_chinese_has_every_message_translated_and_none_fuzzy() -> None:
    catalog = po("zh-CN")
    assert len(catalog) > 150
    empty = [m.id for m in catalog if m.id and not text(m.string).strip("\0 ")]
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert not empty, f"untranslated in zh_CN: {empty[:5]}"
    assert not fuzzy, f"fuzzy in zh_CN (its English changed: check the translation): {fuzzy[:5]}"
    assert not catalog.fuzzy, "the catalogue's header is marked fuzzy"
    assert not catalog.obsolete, list(catalog.obsolete)[:5]


def test_pybabel_extract_finds_exactly_the_catalogued_messages(tmp_path: Path) -> None:
    """What `make messages` extracts, run here: a message in the code but not in a catalogue
    (new, or its English changed), or in a catalogue but no longer in the code, fails."""
    pot = tmp_path / "messages.pot"
    argv = ["pybabel", "-q", "extract", "-F", str(ROOT / "babel.cfg"), "-o", str(pot), str(ROOT)]
    CommandLineInterface().run(argv)
    with pot.open("rb") as f:
        extracted = set(messages(read_po(f)))
    assert len(extracted) > 150
    for lang in PO:
        catalogued = set(messages(po(lang)))
        assert not sorted(extracted - catalogued), f"missing from {lang}: run make messages"
        assert not sorted(catalogued - extracted), f"in {lang}'s catalogue, not in the code"


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_each_mo_is_the_compilation_of_its_po(lang: str) -> None:
    """The .mo files are committed (the app runs from a checkout, a wheel and Docker with no
    build step): each must say what its .po says."""
    with PO[lang].with_suffix(".mo").open("rb") as f:
        compiled = messages(read_mo(f))
    source = {k: v for k, v in messages(po(lang)).items() if v.strip("\0")}
    assert compiled == source


def test_translations_keep_placeholders_and_markup() -> None:
    """The scripts fill {name}, the templates %(name)s, and the trusted HTML must stay whole."""

    def shape(message: str) -> tuple[Counter[str], ...]:
        return (
            Counter(re.findall(r"\{\w+\}", message)),
            Counter(re.findall(r"%\(\w+\)s", message)),
            Counter(re.findall(r"</?\w+", message)),
        )

    wrong = [k for k, v in messages(po("zh-CN")).items() if shape(k) != shape(v)]
    assert not wrong


def test_script_messages_are_named_literally_and_exist() -> None:
    """The scripts ask for their messages by a literal name, s("loading"), never a built one."""
    for script in (STATIC_DIR / "js").glob("*.js"):
        source = script.read_text()
        arguments = re.findall(r"(?<!function )\bs\(\s*([^,)]*)", source)
        built = [a for a in arguments if not re.fullmatch(r'"\w+"\s*', a)]
        assert not built, (script.name, built)
        names = {a.strip().strip('"') for a in arguments}
        assert not sorted(names - set(JS_MESSAGES)), script.name


def test_class_names_are_the_models_classes() -> None:
    assert CLASS_NAMES == CLASSES


def test_chinese_page_data_carries_chinese_messages_and_class_names(client: TestClient) -> None:
    html = get(client, "/upload?lang=zh-CN").text
    found = re.search(r'<script type="application/json" id="page-data">(.*?)</script>', html, re.S)
    assert found
    data = json.loads(found.group(1))
    assert data["strings"]["loading"] == "正在运行网络…"
    assert data["classes"] == list(CLASSES)
    assert data["classNames"]["airplane"] == "飞机"
    assert '<span class="gallery-label">飞机</span>' in html
    english = json.loads(
        re.findall(r'id="page-data">(.*?)</script>', get(client, "/upload?lang=en").text)[0]
    )
    assert english["strings"]["loading"] == "Running the network…"


def test_messages_keep_their_html_and_escape_values() -> None:
    """A message's own markup is output as is; a value formatted into it is escaped."""
    page = templates.env.from_string(
        '{{ _("Picture %(name)s <code>z</code>", name=value) }}'
        "{% trans trimmed %}One <sub>c</sub>{% endtrans %}"
    )
    html = page.render(lang="zh-CN", value="<script>alert(1)</script>")
    assert "Picture &lt;script&gt;alert(1)&lt;/script&gt; <code>z</code>" in html
    assert "One <sub>c</sub>" in html
    question = "Does <code>nn.CrossEntropyLoss</code> apply softmax"
    for lang, expected in (("en", question), ("zh-CN", "<code>nn.CrossEntropyLoss</code> 会替我")):
        assert expected in templates.get_template("index.html").render(
            lang=lang,
            page="index",
            nav={},
            lang_links={},
            lang_names={},
            class_names={},
            page_data={},
            example_batch=[],
        )


# --- Modules -------------------------------------------------------------------------------------


def test_every_page_script_is_a_module_that_imports_hashed_urls(client: TestClient) -> None:
    assets = load_assets(STATIC_DIR)
    for path in PAGES:
        html = get(client, path).text
        tags = re.findall(r"<script\b[^>]*\bsrc=\"/static/js/[^>]*>", html)
        assert len(tags) == 1 and 'type="module"' in tags[0], tags
    for rel, asset in assets.items():
        if not rel.startswith("js/"):
            continue
        body = asset.body.decode()
        assert "window.CEX" not in body and not re.search(r"^\s*window\.\w+\s*=", body, re.M)
        for match in IMPORT.finditer(body):
            spec, _, version = match["spec"].partition("?v=")
            target = "js/" + spec.removeprefix("./")
            assert version == assets[target].digest, (rel, match["spec"])
            answer = client.get(f"/static/{target}?v={version}")
            assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"


def digests(root: Path) -> dict[str, str]:
    return {rel: asset.digest for rel, asset in load_assets(root).items()}


def test_a_changed_dependency_changes_the_url_of_every_importer(tmp_path: Path) -> None:
    js = tmp_path / "js"
    (js / "lib").mkdir(parents=True)
    (js / "page.js").write_text('import { a } from "./a.js";\nimport "./other.js";\n')
    (js / "a.js").write_text('export {\n  b as a,\n} from "./lib/b.js";\n')
    (js / "lib" / "b.js").write_text("export const b = 1;\n")
    (js / "other.js").write_text("export const o = 1;\n")
    (tmp_path / "x.css").write_text('@import "./y.css";\n')
    before = digests(tmp_path)
    assets = load_assets(tmp_path)
    page = assets["js/page.js"].body.decode()
    assert f'import {{ a }} from "./a.js?v={before["js/a.js"]}";' in page
    assert f'import "./other.js?v={before["js/other.js"]}";' in page
    assert f'}} from "./lib/b.js?v={before["js/lib/b.js"]}";' in assets["js/a.js"].body.decode()
    assert assets["x.css"].body == b'@import "./y.css";\n'  # modules only

    (js / "lib" / "b.js").write_text("export const b = 2;\n")
    after = digests(tmp_path)
    assert {rel for rel in before if before[rel] != after[rel]} == {
        "js/lib/b.js",
        "js/a.js",
        "js/page.js",
    }


@pytest.mark.parametrize(
    ("files", "error"),
    [
        ({"js/a.js": 'import x from "lib";'}, "'lib' is not a module under static/js/"),
        ({"js/a.js": 'import x from "./gone.js";'}, "'./gone.js' is not a module"),
        ({"js/a.js": 'import x from "/static/js/b.js";', "js/b.js": ""}, "is not a module"),
        ({"js/a.js": 'import "./b.js";', "js/b.js": 'import "./a.js";'}, "import cycle"),
    ],
)
def test_module_links_refuse_what_they_cannot_hash(files: dict[str, str], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        link_modules({rel: source.encode() for rel, source in files.items()})


@pytest.mark.parametrize("path", ["/", "/upload", "/sandbox", "/train"])
def test_pages_answer_head(client: TestClient, path: str) -> None:
    r = client.head(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")


def test_train_page_hands_its_script_the_tutorial_batch_and_lists_the_parameters(
    client: TestClient,
) -> None:
    html = get(client, "/train?lang=zh-CN").text
    found = re.search(r'<script type="application/json" id="train-data">(.*?)</script>', html, re.S)
    assert found
    batch = json.loads(found.group(1))["batch"]
    # The tutorial's first test batch: cat, ship, ship, plane, each labelled by its file name.
    assert [b["label"] for b in batch] == ["cat", "ship", "ship", "airplane"]
    for b in batch:
        assert b["url"] == asset_url(f"gallery/{b['name']}")
        assert b["name"].startswith(b["label"] + "-")
    # Line 1's table: every parameter of the tutorial's Net, by its state_dict name and shape.
    rows = re.findall(r"<tr><th scope=\"row\"><code>([\w.]+)</code></th><td>([^<]*)</td>", html)
    net = client.app.state.classifier.net  # type: ignore[attr-defined]
    assert rows == [(n, " × ".join(map(str, p.shape))) for n, p in net.named_parameters()]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_links_the_training_page(client: TestClient, path: str) -> None:
    html = get(client, path + "?lang=en").text
    assert 'href="/train?lang=en"' in html
