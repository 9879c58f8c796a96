"""The route table as an nginx or an Envoy configuration (the Envoy side is
edge_router/export_envoy.py), for a team that outgrows the Python edge: same
behaviours, same order, same limits, same X-Edge-* headers.

Both keep the edge's matching rules: case-insensitive patterns on the normalised path
(nginx and Envoy both decode, merge slashes and resolve dot segments first), a
trailing slash that does not matter, and the first matching behaviour wins. A
behaviour limited to some methods sends the other methods to the next behaviour that
covers its whole pattern; a table where that is not the case cannot be exported.
Canary mode is the Python edge's own: export one profile, legacy or strangler.
"""

from __future__ import annotations

import re

from edge_router.export_static import nginx_static, nginx_static_errors
from edge_router.patterns import wildcard_regex
from edge_router.routes import Behaviour, Profile, RouteTable

NOT_FOUND = "Not found"
ERROR_BODIES = {
    413: "Request body too large",
    429: "Too many requests",
    502: "Bad gateway",
    504: "Gateway timeout",
}


class ExportError(ValueError):
    """The table uses something the target proxy cannot say the same way."""


def path_regex(pattern: str) -> str:
    """A regex for the normalised path (no forced trailing slash), anchored at start."""
    if pattern.endswith("/*"):
        return f"^{wildcard_regex(pattern[:-2])}(/.*)?$"
    if pattern.endswith("*"):
        return f"^{wildcard_regex(pattern[:-1])}.*$"
    stripped = pattern.rstrip("/")
    return f"^{wildcard_regex(stripped)}/?$" if stripped else "^/$"


def _literal_head(pattern: str) -> str:
    """The part of a pattern before its first wildcard, lower case."""
    return re.split(r"[*?]", pattern, maxsplit=1)[0].lower()


def _covers(wide: Behaviour, narrow: Behaviour) -> bool:
    """Does `wide` match every path `narrow` matches (methods aside)?"""
    if wide.pattern == "/*":
        return True
    if (
        not wide.pattern.endswith("*")
        or "*" in wide.pattern[:-1]
        or "?" in wide.pattern
    ):
        return False
    head = wide.pattern[:-1].lower()
    narrow_head = _literal_head(narrow.pattern)
    if head.endswith("/"):
        # `/a/*` also matches `/a` itself.
        under = (narrow_head + "/").startswith(head)
        return under or narrow_head.rstrip("/") == head[:-1]
    return narrow_head.startswith(head)


def _overlaps(a: Behaviour, b: Behaviour) -> bool:
    """Can a path match both? Exact when one pattern has no wildcard, else by the
    literal heads (erring towards yes)."""
    for one, other in ((a, b), (b, a)):
        if one.exact:
            return other.matches_path(one.prefix)
    ha, hb = _literal_head(a.pattern).rstrip("/"), _literal_head(b.pattern).rstrip("/")
    return ha.startswith(hb) or hb.startswith(ha)


def method_fallback(profile: Profile, index: int) -> Behaviour:
    """Where requests whose method a behaviour does not take go."""
    behaviour = profile.behaviours[index]
    for later in profile.behaviours[index + 1 :]:
        if later.methods is None and _covers(later, behaviour):
            return later
        if _overlaps(later, behaviour):
            raise ExportError(
                f"{behaviour.name!r} takes only {sorted(behaviour.methods or ())}, and "
                f"{later.name!r} after it overlaps it without covering it: the other "
                f"methods cannot be sent on the same way"
            )
    return profile.behaviours[-1]


def upstream_name(origin: str) -> str:
    return f"edge_{origin}"


def ident(name: str) -> str:
    return name.replace("-", "_")


def _nginx_deny(behaviour: Behaviour) -> list[str]:
    """A `deny` behaviour: the edge's own 404, no origin."""
    return [
        f"set $edge_route {behaviour.name};",
        f"set $edge_origin {behaviour.origin.name};",
        f"add_header X-Edge-Route {behaviour.name} always;",
        f"add_header X-Edge-Origin {behaviour.origin.name} always;",
        "default_type text/plain;",
        f'return 404 "{NOT_FOUND}\\n";',
    ]


def _nginx_proxy(behaviour: Behaviour) -> list[str]:
    if behaviour.denied:
        return _nginx_deny(behaviour)
    # nginx refuses an oversized body before `set` runs, so each behaviour has its
    # own 413 page (a location's error_page also replaces the server's: all listed).
    lines = [
        f"error_page {status} @edge_{status}"
        f"{'_' + ident(behaviour.name) if status == 413 else ''};"
        for status in ERROR_BODIES
    ]
    lines += [
        f"set $edge_route {behaviour.name};",
        f"set $edge_origin {behaviour.origin.name};",
        f"client_max_body_size {behaviour.max_body};",
        f"proxy_connect_timeout {behaviour.timeout:g}s;",
        f"proxy_read_timeout {behaviour.timeout:g}s;",
        f"proxy_send_timeout {behaviour.timeout:g}s;",
    ]
    if behaviour.rate is not None:
        zone = ident(behaviour.name)
        lines.append(f"limit_req zone={zone} burst={behaviour.rate.burst} nodelay;")
    lines += [
        f"add_header X-Edge-Route {behaviour.name} always;",
        f"add_header X-Edge-Origin {behaviour.origin.name} always;",
        f"proxy_pass http://{upstream_name(behaviour.origin.name)};",
    ]
    return lines


def _nginx_serve(behaviour: Behaviour) -> list[str]:
    return (
        nginx_static(behaviour) if behaviour.origin.static else _nginx_proxy(behaviour)
    )


def _nginx_rate(behaviour: Behaviour) -> str:
    assert behaviour.rate is not None
    count, unit = behaviour.rate.text.split("/")
    return (
        f"limit_req_zone $binary_remote_addr zone={ident(behaviour.name)}:10m "
        f"rate={count}r/{unit};"
    )


def _nginx_http(table: RouteTable, profile_name: str) -> list[str]:
    """The top of the file: the process, logging, rate zones and upstreams."""
    profile = table.profiles[profile_name]
    out: list[str] = [
        f"# Generated by `python manage.py edge export nginx --profile {profile_name}`",
        f"# from {table.source}. Do not edit: change the table and export again.",
        "worker_processes auto;",
        "pid nginx.pid;",
        "error_log stderr warn;",
        "events { worker_connections 4096; }",
        "http {",
        "    server_tokens off;",
        "    merge_slashes on;",
        '    log_format edge_json escape=json \'{"time":"$time_iso8601",'
        '"client":"$remote_addr","method":"$request_method","path":"$uri",'
        '"route":"$edge_route","origin":"$edge_origin","status":$status,'
        '"bytes":$body_bytes_sent,"duration_s":$request_time,'
        '"trace_id":"$request_id"}\';',
        "    access_log /dev/stdout edge_json;",
        "    # Upgrade only when the visitor asks; otherwise keep-alive to the origin.",
        '    map $http_upgrade $edge_connection { default upgrade; "" ""; }',
        "    limit_req_status 429;",
    ]
    for behaviour in profile.behaviours:
        if behaviour.rate is not None:
            out.append("    " + _nginx_rate(behaviour))
    used = sorted(
        {b.origin.name for b in profile.behaviours if not (b.denied or b.origin.static)}
    )
    for name in used:
        origin = table.origins[name]
        out.append(
            f"    upstream {upstream_name(name)} "
            f"{{ server {origin.host}:{origin.port}; keepalive 64; }}"
        )
    return out


def _nginx_server(listen: str) -> list[str]:
    """The server's own settings and its error pages (before any behaviour)."""
    out = [
        "    server {",
        f"        listen {listen};",
        "        set $edge_route none;",
        "        set $edge_origin none;",
        "        proxy_http_version 1.1;",
        "        proxy_set_header Connection $edge_connection;",
        "        proxy_set_header Upgrade $http_upgrade;",
        "        proxy_set_header Host $http_host;",
        "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "        proxy_set_header X-Forwarded-Proto $scheme;",
        "        proxy_set_header X-Forwarded-Host $http_host;",
        "        proxy_redirect off;",
        "        proxy_buffering off;",
    ]
    for status in ERROR_BODIES:
        out.append(f"        error_page {status} @edge_{status};")
    for status, text in ERROR_BODIES.items():
        out.append(f"        location @edge_{status} {{")
        out.append("            default_type text/plain;")
        out.append("            add_header X-Edge-Route $edge_route always;")
        out.append("            add_header X-Edge-Origin $edge_origin always;")
        if status == 429:
            out.append("            add_header Retry-After 1 always;")
        out.append(f'            return {status} "{text}\\n";')
        out.append("        }")
    return out


def _nginx_locations(profile: Profile, fallbacks: dict[str, Behaviour]) -> list[str]:
    """A location per behaviour, in order; then where other methods go; then the
    behaviours' own 413 pages."""
    out: list[str] = []
    for behaviour in profile.behaviours:
        if behaviour.pattern == "/*":
            out.append("        location / {")
        else:
            out.append(f'        location ~* "{path_regex(behaviour.pattern)}" {{')
        if behaviour.methods is not None:
            fallback = fallbacks[behaviour.name]
            methods = "|".join(sorted(behaviour.methods))
            out.append(f"            error_page 418 = @route_{ident(fallback.name)};")
            out.append(
                f"            if ($request_method !~ ^({methods})$) {{ return 418; }}"
            )
        out += [f"            {line}" for line in _nginx_serve(behaviour)]
        out.append("        }")
    for target in sorted({b.name for b in fallbacks.values()}):
        behaviour = next(b for b in profile.behaviours if b.name == target)
        out.append(f"        location @route_{ident(target)} {{")
        out += [f"            {line}" for line in _nginx_serve(behaviour)]
        out.append("        }")
    if any(b.origin.static for b in profile.behaviours):
        out += nginx_static_errors()
    for behaviour in profile.behaviours:
        out += [
            f"        location @edge_413_{ident(behaviour.name)} {{",
            "            default_type text/plain;",
            f"            add_header X-Edge-Route {behaviour.name} always;",
            f"            add_header X-Edge-Origin {behaviour.origin.name} always;",
            f'            return 413 "{ERROR_BODIES[413]}\\n";',
            "        }",
        ]
    return out


def nginx_config(
    table: RouteTable, profile_name: str, *, listen: str = "127.0.0.1:8000"
) -> str:
    """A complete nginx.conf. Run it with `nginx -p DIR -c DIR/nginx.conf`: the pid
    file is relative to the prefix DIR, logs go to stderr and stdout."""
    profile = table.profiles[profile_name]
    # Worked out first: a table nginx cannot say the same way raises before any output.
    fallbacks: dict[str, Behaviour] = {}
    for index, behaviour in enumerate(profile.behaviours):
        if behaviour.methods is not None:
            fallbacks[behaviour.name] = method_fallback(profile, index)
    out = _nginx_http(table, profile_name)
    out += _nginx_server(listen)
    out += _nginx_locations(profile, fallbacks)
    out += ["    }", "}", ""]
    return "\n".join(out)
