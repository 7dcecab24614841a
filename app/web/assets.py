"""Static assets, read once into memory: gzip-precompressed, content-hashed, cached for a year.

`asset_url("js/app.js")` gives `/static/js/app.js?v=<hash>`; a request that carries the current
hash gets `Cache-Control: public, max-age=31536000, immutable`, any other one a revalidated answer
with the same strong ETag, so a changed file is never served stale.

static/js/ holds ES modules. Their imports name hashed URLs too: each relative specifier is
rewritten as the assets are loaded (`from "./common.js"` -> `from "./common.js?v=<hash>"`), since
an import map, which would do it in the browser, is an inline script that the CSP forbids. A
module's hash is taken after its imports are rewritten, so a changed dependency changes the URL
of every module that imports it, directly or not.
"""

import gzip
import hashlib
import mimetypes
import posixpath
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from app.web.errors import error_body
from app.web.negotiation import accepts_gzip


def _shipped(name: str) -> Path:
    """templates/ or static/: at the top of a checkout, or inside the package in an installed
    wheel (pyproject.toml maps them to app/templates and app/static at build time)."""
    package = Path(__file__).resolve().parent.parent
    inside = package / name
    return inside if inside.is_dir() else package.parent / name


STATIC_DIR = _shipped("static")
TEMPLATES_DIR = _shipped("templates")
URL_PREFIX = "/static/"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "public, max-age=0, must-revalidate"
COMPRESSIBLE = {".js", ".css", ".svg", ".json", ".txt", ".html", ".map", ".md", ".ico"}
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    content_type: str
    digest: str

    @property
    def etag(self) -> str:
        return f'"{self.digest}"'

    @property
    def gzip_etag(self) -> str:
        return f'"{self.digest}-gz"'


def _content_type(path: Path) -> str:
    suffix = path.suffix.lower()
    return TYPES.get(suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:16]


def _asset(path: Path, body: bytes) -> Asset:
    gzipped: bytes | None = None
    if path.suffix.lower() in COMPRESSIBLE and len(body) > 256:
        packed = gzip.compress(body, compresslevel=9, mtime=0)
        if len(packed) < len(body) * 0.9:
            gzipped = packed
    return Asset(body, gzipped, _content_type(path), _digest(body))


def load_assets(root: Path) -> dict[str, Asset]:
    """Every regular file under root, keyed by its POSIX path relative to root; the modules under
    js/ with their imports linked to hashed URLs."""
    paths: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink() or path.name.startswith("."):
            continue
        paths[path.relative_to(root).as_posix()] = path
    bodies = {rel: path.read_bytes() for rel, path in paths.items()}
    link_modules(bodies)
    return {rel: _asset(paths[rel], body) for rel, body in bodies.items()}


MODULES = "js/"
# A static import or re-export: `import {a} from "./a.js"`, `export * from "./a.js"`,
# `import "./a.js"`, the specifier in group "spec". Our modules only; dynamic import() is not used.
IMPORT = re.compile(
    r"""^(?P<head>[ \t]*(?:(?:import|export)\b[^;'"`]*?\bfrom[ \t]*|import[ \t]*))"""
    r"""(?P<q>["'])(?P<spec>[^"'\n]*)(?P=q)""",
    re.MULTILINE,
)


def link_modules(bodies: dict[str, bytes]) -> None:
    """Rewrite, in place, the relative imports of the modules under js/ to carry the hash of the
    module they import; ValueError for an import of anything else, or an import cycle."""
    modules = {rel for rel in bodies if rel.startswith(MODULES) and rel.endswith(".js")}
    digests: dict[str, str] = {}

    def link(rel: str, importers: tuple[str, ...]) -> str:
        if rel in importers:
            raise ValueError(f"static/{rel}: import cycle {' -> '.join((*importers, rel))}")
        if rel not in digests:

            def hashed(match: re.Match[str]) -> str:
                spec = match["spec"]
                target = posixpath.normpath(posixpath.join(posixpath.dirname(rel), spec))
                if not spec.startswith(("./", "../")) or target not in modules:
                    raise ValueError(f"static/{rel}: {spec!r} is not a module under static/js/")
                version = link(target, (*importers, rel))
                return f"{match['head']}{match['q']}{spec}?v={version}{match['q']}"

            bodies[rel] = IMPORT.sub(hashed, bodies[rel].decode()).encode()
            digests[rel] = _digest(bodies[rel])
        return digests[rel]

    for rel in sorted(modules):
        link(rel, ())


@lru_cache
def _assets() -> dict[str, Asset]:
    return load_assets(STATIC_DIR)


def asset_url(path: str) -> str:
    """The URL of a static file with its content hash; KeyError for a missing file."""
    rel = path.lstrip("/")
    return f"{URL_PREFIX}{rel}?v={_assets()[rel].digest}"


def _etag_matches(if_none_match: str, etags: tuple[str, ...]) -> bool:
    if if_none_match.strip() == "*":
        return True
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return any(tag in candidates for tag in etags)


class StaticAssets:
    """A small ASGI app serving the in-memory assets under its mount point."""

    def __init__(self, assets: dict[str, Asset]) -> None:
        self.assets = assets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        method = scope["method"]
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        asset = self.assets.get(path.lstrip("/"))
        if method not in ("GET", "HEAD"):
            body = error_body(
                f"{method} is not allowed here; this path answers GET, HEAD",
                "method_not_allowed",
                {"method": method, "allowed": "GET, HEAD"},
            )
            await self._error(send, 405, body, [(b"allow", b"GET, HEAD")])
            return
        if asset is None:
            body = error_body("no such static file", "not_found", {"path": path[:200]})
            await self._error(send, 404, body, [])
            return
        headers = Headers(scope=scope)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        versioned = query.get("v", [""])[0] == asset.digest
        use_gzip = asset.gzipped is not None and accepts_gzip(headers.get("accept-encoding", ""))
        body = asset.gzipped if use_gzip and asset.gzipped is not None else asset.body
        etag = asset.gzip_etag if use_gzip else asset.etag
        out: list[tuple[bytes, bytes]] = [
            (b"content-type", asset.content_type.encode()),
            (b"cache-control", (IMMUTABLE if versioned else REVALIDATE).encode()),
            (b"etag", etag.encode()),
        ]
        if asset.gzipped is not None:
            out.append((b"vary", b"Accept-Encoding"))
        if use_gzip:
            out.append((b"content-encoding", b"gzip"))
        if _etag_matches(headers.get("if-none-match", ""), (asset.etag, asset.gzip_etag)):
            await send({"type": "http.response.start", "status": 304, "headers": out})
            await send({"type": "http.response.body", "body": b""})
            return
        out.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": out})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})

    @staticmethod
    async def _error(
        send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]]
    ) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *extra,
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def static_app() -> StaticAssets:
    """The ASGI app that app.main mounts at /static."""
    return StaticAssets(_assets())
