"""Swagger UI at /docs, served from the app's own static files so it works offline and under CSP,
with a few lines above it in the page's language (?lang= or Accept-Language, as the pages
choose): what the API is, how its errors and warnings are coded, and a link back to the app."""

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.web.i18n import N_, negotiate, translate

router = APIRouter(include_in_schema=False)

TITLE = N_("Cross-Entropy Explainer API")
BACK = N_("← Back to the app")
ABOUT = N_(
    "Every stage of PyTorch's nn.CrossEntropyLoss, computed on your logits and target or on "
    "the tutorial's network run on your pictures. Each route below can be tried here."
)
CODES = N_(
    "An error answers a sentence in detail, with a stable code and its values in params, so "
    "that a client can say it in its own language; warnings come with warning_codes likewise."
)

PAGE = """<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css">
<link rel="stylesheet" href="/static/css/docs.css">
</head>
<body>
<header style="max-width:1460px;margin:0 auto;padding:16px 20px 0;font-family:sans-serif">
<p><a href="{home}">{back}</a></p>
<p>{about}</p>
<p>{codes}</p>
</header>
<div id="swagger-ui"></div>
<script src="/static/vendor/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/vendor/swagger-ui/init.js"></script>
</body>
</html>
"""


@router.get("/docs")
def docs(request: Request) -> HTMLResponse:
    lang = negotiate(request.query_params.get("lang"), request.headers.get("accept-language"))
    text = {
        name: escape(translate(lang, m))
        for name, m in {"title": TITLE, "back": BACK, "about": ABOUT, "codes": CODES}.items()
    }
    home = "/" if request.query_params.get("lang") is None else f"/?lang={lang}"
    return HTMLResponse(PAGE.format(lang=lang, home=escape(home), **text))
