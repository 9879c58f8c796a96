"""Path normalisation: the edge matches the path the way the origins will read it.

Origins (Django behind gunicorn or uvicorn) percent-decode the path once. The edge
decodes once too, then merges repeated slashes and resolves `.` and `..` segments,
so `/shop/rods/../rods/muskie-casting-rod/`, `//shop//rods/muskie-casting-rod/` and
`/shop/rods%2Fmuskie-casting-rod/` are one path. Matching then ignores case and a
trailing slash. The normalised path is also what the origin is sent, so the origin
serves exactly the path that was routed.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

# Characters a path may carry unescaped (RFC 3986 pchar and "/").
_PATH_SAFE = "/:@!$&'()*+,;=~"


class BadPath(ValueError):
    """A path no origin can be asked for (control characters, not absolute)."""


def _needs_work(raw: str) -> bool:
    return "%" in raw or "//" in raw or "/." in raw


def normalise(raw_path: str) -> str:
    """The canonical form of a request path (case kept), ready to forward.

    `raw_path` is the path as it came on the wire, still percent-encoded.
    """
    if not raw_path.startswith("/"):
        raise BadPath("the path must start with /")
    if not _needs_work(raw_path):
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw_path):
            raise BadPath("control characters in the path")
        return raw_path
    try:
        decoded = unquote(raw_path, errors="strict") if "%" in raw_path else raw_path
    except UnicodeDecodeError:
        raise BadPath("percent-escapes that are not UTF-8") from None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in decoded):
        raise BadPath("control characters in the path")
    segments: list[str] = []
    parts = decoded.split("/")
    for part in parts[1:]:
        if part in ("", "."):
            continue
        if part == "..":
            if segments:
                segments.pop()
            continue
        segments.append(part)
    trailing = decoded.endswith("/") or parts[-1] in (".", "..")
    path = "/" + "/".join(segments)
    if trailing and segments:
        path += "/"
    return quote(path, safe=_PATH_SAFE)


def match_key(path: str) -> str:
    """What route patterns are matched against: the normalised path, lower case,
    with a trailing slash, so `/a/b` and `/A/B/` match the same behaviour."""
    key = path.lower()
    return key if key.endswith("/") else key + "/"
