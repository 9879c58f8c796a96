"""The top of the nginx configuration: the process, logging, and in the `http {}`
block the maps, the canary draw, rate-limit zones and the upstreams.

The servers and locations that use them are edge_router/nginx_conf.py's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from edge_router import nginx_limits
from edge_router.canary import VISITOR_COOKIE
from edge_router.routes import Behaviour, Profile, RouteTable
from edge_router.selection import COOKIE_MAX_AGE

if TYPE_CHECKING:
    from edge_router.nginx_conf import EngineParts

# What a newly drawn visitor's answer says, whatever the origin said (a cache that
# kept it would hand one id, and one side, to everybody).
PERSONAL_CACHE = "private, no-store"
# Seconds with millisecond digits (nginx's $request_time) to milliseconds: under a
# second by a hash lookup, the rest by regex.
_MS_REGEXES = [
    "~^0\\.0*(?<ms>[1-9][0-9]*)$ $ms;",
    "~^(?<s>[1-9][0-9]*)\\.(?<ms>[0-9]+)$ $s$ms;",
    "default 0;",
]


def upstream_name(origin: str) -> str:
    return f"edge_{origin}"


def ident(name: str) -> str:
    return name.replace("-", "_")


def _nginx_rate(profile: str, behaviour: Behaviour) -> str:
    assert behaviour.rate is not None
    count, unit = behaviour.rate.text.split("/")
    return (
        f"limit_req_zone $binary_remote_addr zone={profile}_{ident(behaviour.name)}"
        f":10m rate={count}r/{unit};"
    )


def _canary(percent: int) -> list[str]:
    """The visitor's profile in canary mode, and its cookie when it has none."""
    share = [f"{percent}% strangler;"] if percent else []
    cookie = (
        f"{VISITOR_COOKIE}=$request_id; Path=/; Max-Age={COOKIE_MAX_AGE}; "
        "HttpOnly; SameSite=Lax"
    )
    # An id that is not 32 hex digits is replaced, as the Python edge does
    # (edge_router/canary.py); nginx's $request_id is 32 hex digits.
    valid = '"~^[0-9a-f]{32}$"'
    return [
        f"map $cookie_{VISITOR_COOKIE} $edge_visitor {{ {valid} "
        f"$cookie_{VISITOR_COOKIE}; default $request_id; }}",
        f'map $cookie_{VISITOR_COOKIE} $edge_new_visitor {{ {valid} ""; '
        f'default "{cookie}"; }}',
        f'split_clients "$edge_visitor" $edge_profile {{ {" ".join(share)} '
        "* legacy; }",
        # Read when the answer's headers go out, so the origin's is known by then.
        'map $edge_cache_own $edge_cache_kept { "" $upstream_http_cache_control; '
        "default $edge_cache_own; }",
        f'map $edge_new_visitor $edge_cache {{ "" $edge_cache_kept; '
        f'default "{PERSONAL_CACHE}"; }}',
    ]


def http_block(
    table: RouteTable, profiles: Sequence[Profile], engine: EngineParts | None
) -> list[str]:
    """The top of the file: the process, logging, rate zones and upstreams, in an
    `http {` the caller closes after its servers."""
    out = [
        *_process(engine),
        "http {",
        *_settings(),
        *_logs(engine),
        "limit_req_status 429;",
        *nginx_limits.http_lines(table),
    ]
    if engine is not None and engine.mode.mode == "canary":
        out += _canary(engine.mode.percent)
    for profile in profiles:
        for behaviour in profile.behaviours:
            if behaviour.rate is not None:
                out.append(_nginx_rate(profile.name, behaviour))
    out += _upstreams(table, profiles)
    if engine is not None:
        out += [
            f"server {{ listen unix:{engine.status_socket}; access_log off; "
            "location / { stub_status; } }",
        ]
    return out


def _process(engine: EngineParts | None) -> list[str]:
    workers = engine.workers if engine else "auto"
    return [
        f"worker_processes {workers};",
        "pid nginx.pid;",
        # Every request runs a few regexes (the path check, the match key's
        # locations, the timing maps): compiled, nginx spent 12.7 µs a request under
        # wrk where it spent 13.7 (docs/results/2026-12-06-edge-cost.md).
        "pcre_jit on;",
        "error_log stderr warn;",
        "events { worker_connections 4096; }",
    ]


def _settings() -> list[str]:
    return [
        "server_tokens off;",
        "merge_slashes on;",
        # The type of the edge's own answers (an origin's answer keeps its own).
        "default_type text/plain;",
        # Under the prefix: the Debian defaults need root.
        "client_body_temp_path client_body;",
        "proxy_temp_path proxy;",
        "fastcgi_temp_path fastcgi;",
        "uwsgi_temp_path uwsgi;",
        "scgi_temp_path scgi;",
        *ms_map("$request_time", "$edge_ms"),
        *ms_map("$request_time", "$edge_log_ms"),
        *ms_map("$upstream_header_time", "$edge_origin_ms"),
        # nginx starts no trace: it logs the visitor's, when well formed.
        "map $http_traceparent $edge_trace_id { "
        '"~^[0-9a-f]{2}-(?<t>[0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$" $t; '
        'default ""; }',
    ]


def ms_map(source: str, name: str) -> list[str]:
    """`name`: the milliseconds in `source` ("0.004": 4). The thousand values under a
    second are exact keys, looked up in a hash: two regexes a request cost nginx
    about 0.2 µs each (docs/results/2026-12-06-edge-cost.md)."""
    exact = [f"{ms / 1000:.3f} {ms};" for ms in range(1000)]
    rows = [" ".join(exact[at : at + 20]) for at in range(0, len(exact), 20)]
    return [f"map {source} {name} {{", *rows, *_MS_REGEXES, "}"]


def _logs(engine: EngineParts | None) -> list[str]:
    """The access log's formats and files."""
    # Buffered: a write per 64 KiB or 200 ms, not per request (the engine reads it).
    logs = ["access_log /dev/stdout edge_json buffer=64k flush=200ms;"]
    if engine is not None:
        # The counters' own short lines: the JSON one goes straight to stdout.
        logs = logs if engine.access_log else []
        logs.append(
            f"access_log {engine.metrics_log} edge_metrics buffer=64k flush=500ms;"
        )
    return [
        'log_format edge_json escape=json \'{"time":"$time_iso8601",'
        '"client":"$remote_addr","method":"$request_method","path":"$uri",'
        '"route":"$edge_route","origin":"$edge_origin","status":$status,'
        '"bytes":$body_bytes_sent,"duration_ms":$edge_log_ms.0,'
        '"trace_id":"$edge_trace_id"}\';',
        # Seconds as nginx has them ("0.004"): the control plane reads them, no map
        # a request to make milliseconds.
        "log_format edge_metrics '$edge_route $edge_origin $status $request_time';",
        *logs,
    ]


def _upstreams(table: RouteTable, profiles: Sequence[Profile]) -> list[str]:
    """An upstream per origin the profiles proxy to (a deny or a directory has none)."""
    used = sorted(
        {
            b.origin.name
            for p in profiles
            for b in p.behaviours
            if not (b.denied or b.origin.static)
        }
    )
    return [
        f"upstream {upstream_name(name)} {{ server {table.origins[name].host}:"
        f"{table.origins[name].port}; keepalive 64; }}"
        for name in used
    ]
