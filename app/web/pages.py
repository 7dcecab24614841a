"""HTML pages: templates only; every number on them comes from the JSON API, but for the model
card's figures, which are built here from the training metrics (app/training/figures.py)."""

from functools import lru_cache
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field, field_validator

from app.engine import tries
from app.model import CLASSES
from app.model.classifier import Classifier
from app.training import figures
from app.web import i18n, negotiation
from app.web.assets import STATIC_DIR, TEMPLATES_DIR, asset_url
from app.web.i18n import LANG_NAMES, LANGS, N_, negotiate

templates = Jinja2Templates(directory=TEMPLATES_DIR)
templates.env.globals["asset_url"] = asset_url
i18n.install(templates.env)

router = APIRouter(include_in_schema=False)
GALLERY = sorted(p.name for p in (STATIC_DIR / "gallery").glob("*.jpg"))
EXAMPLE_BATCH = ("cat-0001.jpg", "ship-0000.jpg", "ship-0001.jpg", "airplane-0003.jpg")


def _url(path: str, params: list[tuple[str, str]]) -> str:
    return f"{path}?{urlencode(params)}" if params else path


def _lang(request: Request) -> str:
    return negotiate(request.query_params.get("lang"), request.headers.get("accept-language"))


def _render(request: Request, template: str, page: str, **extra: Any) -> HTMLResponse:
    """Render a page in the negotiated language with links that keep the query string."""
    query_lang = request.query_params.get("lang")
    lang = _lang(request)
    others = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    lang_links = {code: _url(request.url.path, [*others, ("lang", code)]) for code in LANGS}
    class_names = i18n.class_names(lang)
    keep = [("lang", lang)] if query_lang else []
    context = {
        "lang": lang,
        "page": page,
        "lang_links": lang_links,
        "lang_names": LANG_NAMES,
        "nav": {name: _url(path, keep) for name, path in NAV},
        "class_names": class_names,
        "page_data": {
            "lang": lang,
            "strings": i18n.js_strings(lang),
            "classes": CLASSES,
            "classNames": class_names,
        },
        **extra,
    }
    response = templates.TemplateResponse(request, template, context)
    response.headers["Content-Language"] = lang
    response.headers["Vary"] = "Accept-Language"
    response.headers["Cache-Control"] = "no-cache"
    return response


NAV = (
    ("index", "/"),
    ("upload", "/upload"),
    ("sandbox", "/sandbox"),
    ("train", "/train"),
    ("model", "/model"),
)


@router.get("/favicon.ico")
def favicon() -> RedirectResponse:
    return RedirectResponse(asset_url("favicon.svg"), status_code=301)


@router.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
def index(request: Request) -> HTMLResponse:
    batch = [asset_url(f"gallery/{name}") for name in EXAMPLE_BATCH]
    return _render(request, "index.html", "index", example_batch=batch, **tries.catalogue())


@router.api_route("/upload", methods=["GET", "HEAD"], response_class=HTMLResponse)
def upload(request: Request) -> HTMLResponse:
    gallery = [(name.split("-")[0], asset_url(f"gallery/{name}")) for name in GALLERY]
    settings = request.app.state.settings
    limits = {
        "images": settings.max_images,
        "megapixels": settings.max_image_pixels // 1_000_000,
    }
    return _render(request, "upload.html", "upload", gallery=gallery, limits=limits)


@router.api_route("/sandbox", methods=["GET", "HEAD"], response_class=HTMLResponse)
def sandbox(request: Request) -> HTMLResponse:
    return _render(request, "sandbox.html", "sandbox", **tries.catalogue())


@router.api_route("/train", methods=["GET", "HEAD"], response_class=HTMLResponse)
def train(request: Request) -> HTMLResponse:
    classifier: Classifier = request.app.state.classifier
    params = [(name, list(p.shape), p.numel()) for name, p in classifier.net.named_parameters()]
    return _render(request, "train.html", "train", train_data=_train_data(), params=params)


def _train_data() -> dict[str, Any]:
    """What /train's script starts from: the tutorial's batch of four with the true class of
    each, read from its file name, as on the explainer."""
    batch = [
        {"name": name, "url": asset_url(f"gallery/{name}"), "label": name.split("-")[0]}
        for name in EXAMPLE_BATCH
    ]
    return {"batch": batch}


def prefers_html(request: Request) -> bool:
    """True when the Accept header ranks text/html at least as high as application/json."""
    return negotiation.prefers_html(request.headers.get("accept"))


def model_card(request: Request) -> HTMLResponse:
    """The model card page; GET /model (in the API) serves it to browsers."""
    classifier: Classifier = request.app.state.classifier
    metrics = classifier.metrics
    built = _figures(orjson.dumps(metrics), _lang(request)) if metrics else {}
    return _render(request, "model.html", "model", figures=built, metrics=metrics)


FIGURES_MAX_BYTES = 16 * 1024  # an /evaluate answer's two fields take about 1.5 KB
Count = Annotated[int, Field(ge=0)]
Row = Annotated[list[Count], Field(min_length=len(CLASSES), max_length=len(CLASSES))]


class CardScores(BaseModel):
    """What the model card's two figures are drawn from: the matching fields of an /evaluate
    answer (or of the training metrics)."""

    per_class_accuracy: dict[str, Annotated[float, Field(ge=0, le=1)]]
    confusion_matrix: Annotated[list[Row], Field(min_length=len(CLASSES), max_length=len(CLASSES))]

    @field_validator("per_class_accuracy")
    @classmethod
    def every_class(cls, value: dict[str, float]) -> dict[str, float]:
        if list(value) != list(CLASSES):
            raise ValueError(f"needs the classes {', '.join(CLASSES)}, in that order")
        return value


@router.post("/model/figures")
def card_figures(request: Request, scores: CardScores) -> dict[str, Any]:
    """The shipped card's accuracy-per-class and confusion figures for other scores, such as
    /evaluate's for your weights, so that both cards are drawn by the same code. A plain def:
    building them (about 0.1 s) runs in the thread pool, off the event loop."""
    built = _figures(orjson.dumps(scores.model_dump()), _lang(request))
    return {name: built[name] for name in ("per-class", "confusion")}


# The figures' labels: figures.FIGURE_TEXT's English (a test holds them equal), written out here so
# that pybabel extract sees them. The class names come from i18n.class_names.
FIGURE_TEXT: dict[str, str] = {
    "accuracy": N_("accuracy"),
    "chance": N_("chance (10%)"),
    "true_class": N_("true class"),
    "pred_class": N_("predicted class"),
    "count": N_("test images"),
    "epoch": N_("epoch"),
    "loss": N_("loss (cross-entropy)"),
    "train_loss": N_("training loss"),
    "train_acc": N_("training accuracy"),
    "test_acc": N_("test accuracy"),
}


@lru_cache(maxsize=8)
def _figures(metrics: bytes, lang: str) -> dict[str, Any]:
    """The model card's figures for these metrics (JSON) in `lang`, as plotly.js takes them, by
    name; built once per language (about 0.1 s), as the metrics stay for the life of the app."""
    known = orjson.loads(metrics)
    text = {key: i18n.translate(lang, message) for key, message in FIGURE_TEXT.items()}
    text |= {f"class.{name}": shown for name, shown in i18n.class_names(lang).items()}
    built = {
        "per-class": figures.per_class_accuracy(known, text),
        "confusion": figures.confusion_matrix(known, text),
    }
    if figures.history(known) is not None:
        built["curves"] = figures.training_curves(known, text)
    return {name: orjson.loads(figure.to_json()) for name, figure in built.items()}
