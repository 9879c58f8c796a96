"""A static origin's behaviour in the nginx export (edge_router/export.py): nginx
serves the directory itself, answering as edge_router/static.py does."""

from __future__ import annotations

from edge_router.routes import Behaviour
from edge_router.sites import CONTENT_TYPES, DEFAULT_TYPE


def nginx_static(behaviour: Behaviour) -> list[str]:
    """A directory origin as nginx serves files: the same file for a path, ETag and
    Last-Modified, the origin's headers, 304 when not modified since (or at) the
    file's time; no listing (403 is a 404), no symlink followed, GET and HEAD only."""
    origin = behaviour.origin
    cache_control = behaviour.cache_control or origin.cache_control
    by_type: dict[str, list[str]] = {}
    for suffix, kind in CONTENT_TYPES.items():
        by_type.setdefault(kind.split(";")[0], []).append(suffix[1:])
    lines = [
        f"set $edge_route {behaviour.name};",
        f"set $edge_origin {origin.name};",
        "error_page 403 404 = @edge_404;",
        "error_page 405 = @edge_405;",
        "if ($request_method !~ ^(GET|HEAD)$) { return 405; }",
        f'root "{origin.root}";',
        "disable_symlinks on from=$document_root;",
        "try_files $uri/index.html $uri =404;",
        "types { "
        + " ".join(f"{kind} {' '.join(ext)};" for kind, ext in by_type.items())
        + " }",
        f"default_type {DEFAULT_TYPE};",
        "charset utf-8;",
        "charset_types text/css text/javascript text/plain;",
        "etag on;",
        "if_modified_since before;",
        f'add_header Cache-Control "{cache_control}";',
    ]
    lines += [f'add_header {name} "{value}";' for name, value in origin.headers]
    lines += [
        f"add_header X-Edge-Route {behaviour.name} always;",
        f"add_header X-Edge-Origin {origin.name} always;",
    ]
    return lines


# A directory origin's own answers (edge_router/static.py).
STATIC_ERRORS = {404: ("Not found", ""), 405: ("Method not allowed", "GET, HEAD")}


def nginx_static_errors() -> list[str]:
    out: list[str] = []
    for status, (text, allow) in STATIC_ERRORS.items():
        out += [
            f"        location @edge_{status} {{",
            "            default_type text/plain;",
            "            add_header X-Edge-Route $edge_route always;",
            "            add_header X-Edge-Origin $edge_origin always;",
            "            add_header Cache-Control no-store always;",
        ]
        if allow:
            out.append(f'            add_header Allow "{allow}" always;')
        out += [f'            return {status} "{text}\\n";', "        }"]
    return out
