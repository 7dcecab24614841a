"""Security headers: a strict Content-Security-Policy on HTML answers, nosniff and friends on all.

Added by the one middleware layer (app.web.middleware.edge), which passes streaming answers
through untouched.
The policy allows scripts from this origin only: no inline scripts, no inline event handlers,
no eval. Plotly writes <style> elements and style attributes, hence 'unsafe-inline' for styles
(styles only). Pictures may be data: URLs (the 32x32 previews) or blob: URLs (uploads shown
before they are sent).
"""

from starlette.types import Message

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

HTML_ONLY = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


# As the raw (lower-case name, value) pairs of an ASGI message: added to the answer's own list
# without building a Headers object for it (Starlette's MutableHeaders did that for every answer).
_ALWAYS = [(k.lower().encode(), v.encode()) for k, v in ALWAYS.items()]
_HTML_ONLY = [(k.lower().encode(), v.encode()) for k, v in HTML_ONLY.items()]


def add_security_headers(start: Message) -> None:
    """Add the headers to an http.response.start message, each unless the answer set it."""
    raw: list[tuple[bytes, bytes]] = list(start.get("headers", ()))
    names = set()
    html = False
    for name, value in raw:  # one pass, in Python: it runs on every answer
        name = name.lower()
        names.add(name)
        if name == b"content-type":
            html = value[:9].lower() == b"text/html"
    raw += [(name, value) for name, value in _ALWAYS if name not in names]
    if html:
        raw += [(name, value) for name, value in _HTML_ONLY if name not in names]
    start["headers"] = raw
