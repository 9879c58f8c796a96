"""Static origins in the route table: a directory the edge serves itself.

CloudFront's S3 origin, on a disk: `[origins] muskie-site = { dir = "..." }`. The
request's (normalised) path is the file's path under the directory, as an S3 key is
the object's: `/shop/rods/muskie-casting-rod/` is `<dir>/shop/rods/muskie-casting-rod/
index.html`. Keys of such an origin:

- `dir` (required): the directory; a relative one is under the checkout (the
  directory above `edge_router/`), whatever the edge's working directory;
- `env`: an environment variable that replaces `dir` when set;
- `cache_control`: the `Cache-Control` of every answer (default `public, max-age=60`);
- `headers`: a table of more response headers (a Content-Security-Policy, say).

The directory need not exist when the table is loaded (a site is built when its sale
opens): until it does, every path under it is a 404.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STATIC_KEYS = frozenset({"dir", "env", "cache_control", "headers"})
DEFAULT_CACHE_CONTROL = "public, max-age=60"
_ENV = re.compile(r"^[A-Z][A-Z0-9_]*$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,64}$")
# Printable ASCII but `"`, `\` and `$`: the nginx export quotes them as they are.
_HEADER_VALUE = re.compile(r"^[\x20\x21\x23\x25-\x5b\x5d-\x7e]{1,2048}$")
_VALUE_RULE = 'printable ASCII without ", \\ or $'
_UNSAFE_DIR = re.compile(r'["\\$\x00-\x1f]')
# What a file is, by its suffix (the nginx export declares the same types).
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".webp": "image/webp",
    ".woff2": "font/woff2",
}
DEFAULT_TYPE = "application/octet-stream"
# The edge writes these itself (or they are the file's own).
_RESERVED = frozenset(
    {"content-length", "content-type", "etag", "last-modified", "date", "server",
     "cache-control", "connection", "transfer-encoding", "allow"}
)  # fmt: skip


def site_root(value: str) -> Path:
    """An absolute directory: `value`, or under the checkout when relative."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def _headers(name: str, raw: Any, problems: list[str]) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        problems.append(f"origin {name!r}: headers must be a table of name = value")
        return ()
    out: list[tuple[str, str]] = []
    for key, value in raw.items():
        if not _HEADER_NAME.match(key) or key.lower() in _RESERVED:
            problems.append(
                f"origin {name!r}: header {key!r} is not a name the table may set"
            )
        elif not isinstance(value, str) or not _HEADER_VALUE.match(value):
            problems.append(f"origin {name!r}: header {key!r}: {_VALUE_RULE}")
        else:
            out.append((key, value))
    return tuple(out)


def static_spec(
    name: str, spec: dict[str, Any], env: Mapping[str, str], problems: list[str]
) -> tuple[Path, str, str, tuple[tuple[str, str], ...]]:
    """(root, env variable, Cache-Control, extra headers) of a static origin's spec;
    what is wrong goes to `problems`."""
    for key in sorted(set(spec) - STATIC_KEYS):
        problems.append(f"origin {name!r}: unknown key {key!r} for a directory origin")
    variable = spec.get("env", "")
    if not isinstance(variable, str) or (variable and not _ENV.match(variable)):
        problems.append(f"origin {name!r}: env must be an environment variable name")
        variable = ""
    value = (env.get(variable) if variable else None) or spec.get("dir")
    if not isinstance(value, str) or not value.strip() or _UNSAFE_DIR.search(value):
        problems.append(
            f'origin {name!r}: dir must be a directory path (no ", \\, $ or '
            f"control characters)"
        )
        value = "."
    cache_control = spec.get("cache_control", DEFAULT_CACHE_CONTROL)
    if not isinstance(cache_control, str) or not _HEADER_VALUE.match(cache_control):
        problems.append(f"origin {name!r}: cache_control: {_VALUE_RULE}")
        cache_control = DEFAULT_CACHE_CONTROL
    headers = _headers(name, spec.get("headers"), problems)
    return site_root(value), variable, cache_control, headers
