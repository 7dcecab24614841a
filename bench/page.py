"""What a first visit to / costs over the wire, and whether every static asset can be cached."""

import gzip
import http.client
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from app.web.assets import IMPORT

FETCHED_RELS = {"stylesheet", "icon", "preload", "modulepreload", "manifest", "apple-touch-icon"}
CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)")


@dataclass(frozen=True)
class Fetched:
    path: str
    status: int
    wire_bytes: int  # status line, headers and body as sent (compressed where it was)
    body_bytes: int
    content_encoding: str
    cache_control: str
    body: bytes

    @property
    def cacheable(self) -> bool:
        """Cacheable for a while by any browser: a max-age > 0 (or immutable), and not no-store."""
        directives = [d.strip().lower() for d in self.cache_control.split(",")]
        if "no-store" in directives or "no-cache" in directives or "private" in directives:
            return False
        ages = [d.split("=", 1)[1] for d in directives if d.startswith("max-age=")]
        return "immutable" in directives or any(a.isdigit() and int(a) > 0 for a in ages)


@dataclass
class PageLoad:
    page: Fetched
    assets: list[Fetched] = field(default_factory=list)

    @property
    def wire_bytes(self) -> int:
        return self.page.wire_bytes + sum(a.wire_bytes for a in self.assets)

    @property
    def uncacheable(self) -> list[str]:
        return [a.path for a in self.assets if not a.cacheable]

    @property
    def failed(self) -> list[str]:
        return [f"{a.path} ({a.status})" for a in self.assets if a.status != 200]


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v for k, v in attrs if v is not None}
        if tag in ("script", "img", "source", "audio", "video") and "src" in a:
            self.urls.append(a["src"])
        elif tag == "link" and "href" in a:
            rel = a.get("rel", "").lower().split()
            if FETCHED_RELS & set(rel):
                self.urls.append(a["href"])
        if tag in ("img", "source") and "srcset" in a:
            self.urls.extend(part.split()[0] for part in a["srcset"].split(",") if part.strip())


def fetch(base: str, path: str) -> Fetched:
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        connection.request("GET", path, headers={"Accept-Encoding": "gzip"})
        response = connection.getresponse()
        body = response.read()  # http.client never decodes: these are the bytes on the wire
        head = f"HTTP/1.1 {response.status} {response.reason}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in response.getheaders()
        )
        return Fetched(
            path=path,
            status=response.status,
            wire_bytes=len(head.encode("latin-1")) + 2 + len(body),
            body_bytes=len(body),
            content_encoding=response.getheader("content-encoding", "") or "",
            cache_control=response.getheader("cache-control", "") or "",
            body=body,
        )
    finally:
        connection.close()


def _same_origin(base: str, page_path: str, url: str) -> str | None:
    absolute = urljoin(base + page_path, url)
    if url.startswith("data:") or urlsplit(absolute).netloc != urlsplit(base).netloc:
        return None
    parts = urlsplit(absolute)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _decoded(f: Fetched) -> bytes:
    if f.content_encoding == "gzip":
        return gzip.decompress(f.body)
    return f.body


def first_load(base: str, path: str = "/") -> PageLoad:
    """GET the page with Accept-Encoding: gzip, then every same-origin script, stylesheet,
    icon and picture it names (the modules its modules import, and the url()s in its
    stylesheets), once each."""
    page = fetch(base, path)
    load = PageLoad(page)
    if page.status != 200:
        return load
    parser = _Links()
    parser.feed(_decoded(page).decode("utf-8", "replace"))
    queue = [u for u in (_same_origin(base, path, x) for x in parser.urls) if u]
    seen: set[str] = set()
    while queue:
        url = queue.pop(0)
        if url in seen:
            continue
        seen.add(url)
        asset = fetch(base, url)
        load.assets.append(asset)
        if asset.status == 200 and url.split("?")[0].endswith(".js"):
            # the modules a module imports (their URLs carry hashes: app/web/assets.py)
            for match in IMPORT.finditer(_decoded(asset).decode("utf-8", "replace")):
                resolved = _same_origin(base, url.split("?")[0], match["spec"])
                if resolved:
                    queue.append(resolved)
        if asset.status == 200 and url.split("?")[0].endswith(".css"):
            css = _decoded(asset).decode("utf-8", "replace")
            for ref in CSS_URL.findall(css):
                resolved = _same_origin(base, url.split("?")[0], ref)
                if resolved:
                    queue.append(resolved)
    return load
