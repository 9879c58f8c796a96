"""The edge's own answers in the nginx configuration: its error pages (the Python
edge's short bodies and X-Edge-* headers) and the admin paths (/_edge/healthz per
worker, the rest of /_edge/ a 404), and the match key both are found by.

The behaviours' locations that use them are edge_router/nginx_conf.py's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge_router.nginx_conf import EngineParts

NOT_FOUND = "Not found"
ERROR_BODIES = {
    413: "Request body too large",
    429: "Too many requests",
    502: "Bad gateway",
    504: "Gateway timeout",
}
# What the server rewrites every request to (`.PROFILE/METHOD/path`), and what each
# location takes back off. No leading slash: a URI nginx parsed always has one, so
# no visitor's path is a key. A dot, not `~`, which nginx would read as a location's
# regex modifier: the default behaviour is the prefix location `.PROFILE/`.
KEY_PREFIX = r"^\.[a-z]+/[A-Z_-]+"
BACK = r"rewrite ^\.[a-z]+/[A-Z_-]+(/.*)$ $1 break;"
# Every /_edge/ path, any method (the admin paths win over any behaviour).
ADMIN_KEY = f"{KEY_PREFIX}/_edge/"


def edge_headers(route: str, origin: str, canary: bool) -> list[str]:
    lines = [
        f"add_header X-Edge-Route {route} always;",
        f"add_header X-Edge-Origin {origin} always;",
    ]
    if canary:
        lines.append("add_header Set-Cookie $edge_new_visitor always;")
    return lines


def error_pages(suffix: str) -> list[str]:
    # A location's error_page replaces the server's: each location lists them all.
    return [f"error_page {status} @edge_{status}{suffix};" for status in ERROR_BODIES]


def error_location(
    name: str, status: int, route: str, origin: str, canary: bool
) -> list[str]:
    lines = [
        f"location @{name} {{",
        "    default_type text/plain;",
        "    charset utf-8;",
        "    add_header Cache-Control no-store always;",
        *[f"    {line}" for line in edge_headers(route, origin, canary)],
    ]
    if status == 429:
        lines.append("    add_header Retry-After 1 always;")
    lines += [f'    return {status} "{ERROR_BODIES[status]}\\n";', "}"]
    return lines


def admin_location(engine: EngineParts) -> list[str]:
    """/_edge/healthz answered by each worker; the rest of /_edge/ is a 404 here, as
    in the Python edge (the control plane serves it on the admin listener)."""
    mode = engine.mode
    health = (
        f'{{"status":"ok","engine":"nginx","mode":"{mode.mode}",'
        f'"percent":{mode.percent},"version":{mode.version},'
        f'"redis":"{"ok" if engine.redis_ok else "unreachable"}","worker":$pid}}'
    )
    refused = '{"error":"$request_method is not allowed here; use GET, HEAD"}'
    own = [
        "    set $edge_route edge;",
        "    set $edge_origin edge;",
        "    add_header Cache-Control no-store always;",
        *[f"    {line}" for line in edge_headers("edge", "edge", False)],
    ]
    # One regex for every other request: the health check's two are nested inside
    # (tried only when this one matches; neither matching, this one's 404 answers).
    return [
        f'location ~ "{ADMIN_KEY}" {{',
        *own,
        "    default_type text/plain;",
        f'    return 404 "{NOT_FOUND}\\n";',
        '    location ~ "^\\.[a-z]+/(?:GET|HEAD)/_edge/healthz/?$" {',
        *own,
        "        default_type application/json;",
        f"        return 200 '{health}\\n';",
        "    }",
        f'    location ~ "{KEY_PREFIX}/_edge/healthz/?$" {{',
        *own,
        '        add_header Allow "GET, HEAD" always;',
        "        default_type application/json;",
        f"        return 405 '{refused}\\n';",
        "    }",
        "}",
    ]
