"""The route table as an nginx configuration: the nginx engine's data plane, and
`python manage.py edge export nginx`.

The Python edge's matching rules, said with stock nginx directives (Debian's
nginx-light: no lua, no njs):

- nginx decodes the path, merges slashes and resolves dot segments first; the
  server then rewrites every request whose path is well formed to
  `.PROFILE/METHOD/normalised-path`, and each behaviour is a case-insensitive regex
  location on that key, in table order (the default, last, the prefix location
  `.PROFILE/`: no regex). The first match wins, as in the Python edge,
  methods included (a behaviour limited to some methods lets the others fall through
  to the next one that matches). The behaviours before a profile's default are
  nested in one location whose regex is theirs joined, so a request for the default
  (most pages) tries one regex for all of them. A path that is not well formed keeps
  its own URI, which starts with a slash where a key never does: no key location
  matches it, and `location /` answers 400.
- Inside the location the path is rewritten back, so the origin is sent the
  normalised path, percent-encoded again: the path that was routed, as the Python
  edge sends it.
- Canary mode draws the profile with `split_clients` on a random visitor id kept in
  the `edge_visitor` cookie (MurmurHash2 of the id, as the Python edge hashes it):
  raising the percent only moves visitors from legacy to strangler.
- Limits: `client_max_body_size` (413), `limit_req` per client address with the
  behaviour's burst (429 with Retry-After), proxy timeouts (504); a dead origin 502.
  A websocket handshake (an `Upgrade` header) leaves its behaviour's location for a
  named copy of it that adds the websocket cap (edge_router/nginx_limits.py): other
  requests never evaluate that cap. The edge's own answers (error pages, /_edge/)
  are edge_router/nginx_answers.py's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edge_router import nginx_limits
from edge_router.export_static import nginx_static, nginx_static_errors
from edge_router.modes import Mode
from edge_router.nginx_answers import (
    ADMIN_KEY,
    BACK,
    ERROR_BODIES,
    NOT_FOUND,
    admin_location,
    edge_headers,
    error_location,
    error_pages,
)
from edge_router.nginx_http import http_block, ident, upstream_name
from edge_router.patterns import wildcard_regex
from edge_router.routes import Behaviour, Profile, RouteTable

# The status a proxied location answers a websocket handshake with, for its
# error_page to hand the request to the location's websocket copy.
_UPGRADE = 418
# A decoded path the Python edge refuses with a 400 is not of this form: printable
# ASCII or well-formed UTF-8, no control characters (edge_router/paths.py).
_GOOD_PATH = (
    r"^(?:[\x20-\x7e]|[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]"
    r"|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]"
    r"|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    r"|\xf4[\x80-\x8f][\x80-\xbf]{2})*\z"
)


class ExportError(ValueError):
    """The table uses something the target proxy cannot say the same way."""


@dataclass(frozen=True)
class EngineParts:
    """What the nginx engine adds to an export: the mode in force (canary included),
    the health answer, workers, the log."""

    mode: Mode
    workers: int
    # Where the control plane reads nginx's counters (stub_status), a unix socket.
    status_socket: str
    # Where the control plane counts requests: a pipe it reads (/proc/self/fd/N).
    metrics_log: str
    access_log: bool = True
    redis_ok: bool = True


def path_regex(pattern: str) -> str:
    """A regex for the normalised path (no forced trailing slash), anchored at start."""
    if pattern.endswith("/*"):
        return f"^{wildcard_regex(pattern[:-2])}(/.*)?$"
    if pattern.endswith("*"):
        return f"^{wildcard_regex(pattern[:-1])}.*$"
    stripped = pattern.rstrip("/")
    return f"^{wildcard_regex(stripped)}/?$" if stripped else "^/$"


def _location_key(profile: str, behaviour: Behaviour) -> str:
    """The regex of a behaviour's location, on `.PROFILE/METHOD/path`."""
    methods = "[A-Z_-]+"
    if behaviour.methods is not None:
        methods = "(?-i:" + "|".join(sorted(behaviour.methods)) + ")"
    path = path_regex(behaviour.pattern)[1:]
    if behaviour.pattern == "/*":
        path = "(/.*)?$"
    return f"^\\.{profile}/{methods}{path}"


def _proxy(profile: str, behaviour: Behaviour, canary: bool) -> list[str]:
    """A behaviour's location body: limits, its error pages, then the origin."""
    if behaviour.origin.static:
        return _static(behaviour, canary)
    if behaviour.denied:
        # A `deny` behaviour (edge-holes): 404 here, never an origin.
        return [
            f"set $edge_route {behaviour.name};",
            f"set $edge_origin {behaviour.origin.name};",
            "default_type text/plain;",
            "charset utf-8;",
            "add_header Cache-Control no-store always;",
            *edge_headers(behaviour.name, behaviour.origin.name, canary),
            f'return 404 "{NOT_FOUND}\\n";',
        ]
    # A websocket handshake goes to the location's copy with the websocket cap
    # (`_upgrade_location`), before any limit here counts it. That copy's own error
    # pages must still answer: recursive_error_pages.
    return [
        "recursive_error_pages on;",
        f"error_page {_UPGRADE} = @{_upgrade_name(profile, behaviour)};",
        f"if ($http_upgrade) {{ return {_UPGRADE}; }}",
        *_proxied(profile, behaviour, canary),
    ]


def _origin_headers(*, upgrade: bool) -> list[str]:
    """The request's headers to the origin. A plain request (every location but the
    websocket copies) keeps the connection alive and passes no Upgrade: constants,
    no variable to evaluate a request."""
    connection, wanted = ("upgrade", "$http_upgrade") if upgrade else ('""', '""')
    return [
        f"proxy_set_header Connection {connection};",
        f"proxy_set_header Upgrade {wanted};",
        "proxy_set_header Host $http_host;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        # The server listens in plain HTTP: a constant, not a variable a request.
        "proxy_set_header X-Forwarded-Proto http;",
        "proxy_set_header X-Forwarded-Host $http_host;",
        # Hop-by-hop headers nginx would pass on (it drops the rest itself).
        'proxy_set_header Proxy-Authorization "";',
        'proxy_set_header Proxy-Connection "";',
    ]


def _upgrade_name(profile: str, behaviour: Behaviour) -> str:
    return f"edge_upgrade_{profile}_{ident(behaviour.name)}"


def _upgrade_location(
    table: RouteTable, profile: str, behaviour: Behaviour, canary: bool
) -> list[str]:
    """A proxied behaviour's websockets: its location again, with the per-address
    caps of both kinds (the server's own is not counted before a request gets here)
    and the handshake's headers (a location's proxy_set_header replaces them all)."""
    if behaviour.denied or behaviour.origin.static:
        return []
    body = [
        *nginx_limits.websocket_lines(table),
        *_origin_headers(upgrade=True),
        *_proxied(profile, behaviour, canary),
    ]
    return [
        f"location @{_upgrade_name(profile, behaviour)} {{",
        *[f"    {line}" for line in body],
        "}",
    ]


def _proxied(profile: str, behaviour: Behaviour, canary: bool) -> list[str]:
    """The origin's side of a behaviour's location: limits, error pages, headers."""
    suffix = f"_{profile}_{ident(behaviour.name)}"
    lines = [
        # Before the rewrite: `break` ends the rewrite directives, `set` included.
        f"set $edge_route {behaviour.name};",
        f"set $edge_origin {behaviour.origin.name};",
        *_cache_own(behaviour.cache_control or "", canary),
        BACK,
        *error_pages(suffix),
        f"client_max_body_size {behaviour.max_body};",
        # In milliseconds: nginx takes no fractions of a second.
        f"proxy_connect_timeout {round(behaviour.timeout * 1000)}ms;",
        f"proxy_read_timeout {round(behaviour.timeout * 1000)}ms;",
        f"proxy_send_timeout {round(behaviour.timeout * 1000)}ms;",
    ]
    if behaviour.rate is not None:
        zone = f"{profile}_{ident(behaviour.name)}"
        # Shared by nginx's workers (the Python edge's buckets are per worker).
        burst = f" burst={behaviour.rate.burst} nodelay"
        lines.append(f"limit_req zone={zone}{burst};")
    lines += edge_headers(behaviour.name, behaviour.origin.name, canary)
    lines += _cache_canary() if canary else nginx_limits.cache_lines(behaviour)
    lines += [
        'add_header Server-Timing "edge;dur=$edge_ms, origin;dur=$edge_origin_ms";',
        f"proxy_pass http://{upstream_name(behaviour.origin.name)};",
    ]
    return lines


def _cache_own(value: str, canary: bool) -> list[str]:
    """In canary mode, the Cache-Control a behaviour's answers carry unless the
    visitor is new ("": the origin's): `$edge_cache` reads it (see `_canary`)."""
    return [f'set $edge_cache_own "{value}";'] if canary else []


def _cache_canary() -> list[str]:
    return ["proxy_hide_header Cache-Control;", "add_header Cache-Control $edge_cache;"]


def _static(behaviour: Behaviour, canary: bool) -> list[str]:
    """A directory origin (edge_router/export_static.py), its files looked up by the
    path rewritten back from the match key (after the method check: `break` ends
    the rewrite directives). In canary mode a new visitor gets its cookie here too,
    and the answer is then its own (`private, no-store`)."""
    lines = nginx_static(behaviour)
    if canary:
        value = behaviour.cache_control or behaviour.origin.cache_control
        lines = [
            "add_header Cache-Control $edge_cache;"
            if line.startswith("add_header Cache-Control ")
            else line
            for line in lines
        ]
        lines = [*_cache_own(value, canary), *lines]
        lines.append("add_header Set-Cookie $edge_new_visitor always;")
    at = next(i for i, line in enumerate(lines) if line.startswith("if ("))
    return [*lines[: at + 1], BACK, *lines[at + 1 :]]


def _server_top(
    table: RouteTable, listen: str, profile: str, canary: bool
) -> list[str]:
    """The server's own settings, the rewrite to the match key, its error pages."""
    out = [
        "server {",
        f"listen {listen};",
        *nginx_limits.server_lines(table),
        "set $edge_route none;",
        "set $edge_origin none;",
        *_cache_own("", canary),
        # The check of the path is the rewrite's own regex: a path that fails it is
        # not rewritten, and `location /` answers 400 (nginx refuses a few itself,
        # such as %00, with its own page).
        f'rewrite "{_GOOD_PATH}" .{profile}/$request_method$uri;',
        "proxy_http_version 1.1;",
        *_origin_headers(upgrade=False),
        "proxy_hide_header Proxy-Authenticate;",
        "proxy_redirect off;",
        "proxy_buffering off;",
        "proxy_request_buffering on;",
        "add_header X-Edge-Route none always;",
        "add_header X-Edge-Origin none always;",
        "add_header Cache-Control no-store always;",
        *error_pages(""),
    ]
    for status in ERROR_BODIES:
        out += error_location(
            f"edge_{status}", status, "$edge_route", "$edge_origin", canary
        )
    return out


def _locations(
    table: RouteTable,
    profiles: Sequence[Profile],
    canary: bool,
    engine: EngineParts | None,
) -> list[str]:
    """Each profile's behaviours in table order: the ones before the default nested
    in one location whose regex is exactly theirs joined (`_ahead`), then the
    default; named locations (error pages, websocket copies) at the server's level."""
    out: list[str] = []
    named: list[str] = []
    for at, profile in enumerate(profiles):
        *ahead, default = profile.behaviours
        # The admin paths come before any behaviour's: in the first group.
        out += _ahead(profile.name, ahead, canary, engine if at == 0 else None)
        out += _behaviour_location(profile.name, default, canary, default=True)
        for behaviour in profile.behaviours:
            named += _upgrade_location(table, profile.name, behaviour, canary)
            suffix = f"_{profile.name}_{ident(behaviour.name)}"
            for status in ERROR_BODIES:
                named += error_location(
                    f"edge_{status}{suffix}",
                    status,
                    behaviour.name,
                    behaviour.origin.name,
                    canary,
                )
    out += named
    if any(b.origin.static for p in profiles for b in p.behaviours):
        out += nginx_static_errors()
    # Only a path the server did not rewrite to a key (each profile ends with "/*"):
    # one that is not well formed.
    out += ["location / {", '    return 400 "Bad request\\n";', "}", "}", "}", ""]
    return out


def _behaviour_location(
    profile: str, behaviour: Behaviour, canary: bool, *, default: bool = False
) -> list[str]:
    # The default takes every key of its profile: a prefix, which nginx uses when no
    # regex location matches, after trying them (`_ahead`'s), with no regex itself.
    where = f".{profile}/" if default else f'~* "{_location_key(profile, behaviour)}"'
    return [
        f"location {where} {{",
        *[f"    {line}" for line in _proxy(profile, behaviour, canary)],
        "}",
    ]


def _ahead(
    profile: str,
    behaviours: Sequence[Behaviour],
    canary: bool,
    engine: EngineParts | None,
) -> list[str]:
    """One location for the admin paths and the behaviours before the default: its
    regex matches exactly when one of theirs does, and they are tried inside, in
    order, only then. A request for the default behaviour (most pages) tries one
    regex for all of them, not one each; one for them pays one regex more."""
    keys = [f"(?-i:{ADMIN_KEY[1:]})"] if engine is not None else []
    inside = admin_location(engine) if engine is not None else []
    for behaviour in behaviours:
        keys.append(_location_key(profile, behaviour)[1:])
        inside += _behaviour_location(profile, behaviour, canary)
    if not keys:
        return []
    # Never answers itself: whatever its regex matches, a location inside does.
    return [f'location ~* "^(?:{"|".join(keys)})" {{', *inside, "}"]


def _indent(lines: list[str]) -> str:
    depth = 0
    out = []
    for line in (raw.strip() for raw in lines):
        if line.startswith("}"):
            depth -= 1
        out.append("    " * max(depth, 0) + line if line else "")
        if line.endswith("{"):
            depth += 1
    return "\n".join(out)


def nginx_config(
    table: RouteTable,
    profile_name: str,
    *,
    listen: str = "127.0.0.1:8000",
    engine: EngineParts | None = None,
) -> str:
    """A complete nginx.conf for one profile, or with `engine` for the mode in force
    (canary: both profiles). Run it with `nginx -p DIR -c DIR/nginx.conf`: the pid
    file and temp directories are under the prefix DIR, logs go to stdout/stderr."""
    canary = engine is not None and engine.mode.mode == "canary"
    if canary:
        profiles = [table.profiles["strangler"], table.profiles["legacy"]]
        selector = "$edge_profile"
    else:
        name = engine.mode.mode if engine is not None else profile_name
        profiles = [table.profiles[name]]
        selector = name
    source = (
        f"the nginx engine, mode {engine.mode.describe()} (version "
        f"{engine.mode.version})"
        if engine is not None
        else f"`python manage.py edge export nginx --profile {profile_name}`"
    )
    head = [
        f"# Generated by {source}",
        f"# from {table.source}. Do not edit: change the table and export again.",
    ]
    lines = http_block(table, profiles, engine)
    lines += _server_top(table, listen, selector, canary)
    lines += _locations(table, profiles, canary, engine)
    return "\n".join(head) + "\n" + _indent(lines)
