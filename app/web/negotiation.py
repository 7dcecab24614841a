"""Content negotiation: the one reader of the q-values in Accept, Accept-Encoding and
Accept-Language headers (RFC 9110, section 12.4.2), and what each of them asks for."""

import math
from typing import NamedTuple

NPZ = "application/x-npz"  # numpy's archive of arrays (np.savez), the answer for array clients


class Preference(NamedTuple):
    """One element of such a header: `gzip;q=0.5` is Preference("gzip", 0.5, position)."""

    name: str  # lower-cased: codings, media types and language tags are case-insensitive
    quality: float  # 0 (not acceptable) to 1; 1 when absent, 0 when not a number
    position: int  # where it stood in the header, for ties


def preferences(header: str | None) -> list[Preference]:
    """Every element of a comma-separated header, in order; empty names are left out."""
    found: list[Preference] = []
    for position, part in enumerate((header or "").split(",")):
        name, *params = part.split(";")
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                quality = _quality(value)
        if name.strip():
            found.append(Preference(name.strip().lower(), quality, position))
    return found


def _quality(value: str) -> float:
    try:
        quality = float(value.strip())
    except ValueError:
        return 0.0
    return min(max(quality, 0.0), 1.0) if math.isfinite(quality) else 0.0


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an Accept-Encoding header allows gzip. The coding named outright wins over `*`
    (RFC 9110, section 12.5.3), so `*, gzip;q=0` refuses it; a header that names neither
    refuses it too, and so does none at all."""
    found = preferences(accept_encoding)
    named = [p.quality for p in found if p.name in ("gzip", "x-gzip")]
    anything = [p.quality for p in found if p.name == "*"]
    quality = max(named) if named else max(anything, default=0.0)
    return quality > 0


def _ranks(accept: str | None) -> dict[str, float]:
    """Media type -> its quality in an Accept header, the highest where named twice."""
    ranks: dict[str, float] = {}
    for p in preferences(accept):
        ranks[p.name] = max(p.quality, ranks.get(p.name, 0.0))
    return ranks


def prefers_html(accept: str | None) -> bool:
    """True when the Accept header ranks text/html above 0 and at least as high as
    application/json (each at its highest where named twice)."""
    ranks = _ranks(accept)
    html = ranks.get("text/html", 0.0)
    return html > 0 and html >= ranks.get("application/json", 0.0)


def prefers_npz(accept: str | None) -> bool:
    """True when the Accept header ranks application/x-npz above 0 and above application/json
    (each at its highest where named twice): JSON is the default, so a tie keeps it, and so
    does any header that does not name the .npz type (wildcards included; no 406)."""
    ranks = _ranks(accept)
    npz = ranks.get(NPZ, 0.0)
    return npz > 0 and npz > ranks.get("application/json", 0.0)


def ranked_languages(accept_language: str | None) -> list[str]:
    """The language tags of an Accept-Language header, best first (ties keep their order),
    without those of q=0."""
    ranked = sorted(preferences(accept_language), key=lambda p: (-p.quality, p.position))
    return [p.name for p in ranked if p.quality > 0]
