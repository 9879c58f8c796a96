"""The route table as an Envoy v3 bootstrap (edge_router/export.py has the shared
rules and the nginx side): same behaviours, same order, same limits, same X-Edge-*
headers. A static origin has no Envoy form (Envoy serves no files)."""

from __future__ import annotations

import json
from typing import Any

from edge_router.export import (
    NOT_FOUND,
    ExportError,
    ident,
    path_regex,
    upstream_name,
)
from edge_router.routes import Behaviour, Profile, RouteTable

_TYPES = "type.googleapis.com/envoy.extensions.filters"
HCM_TYPE = f"{_TYPES}.network.http_connection_manager.v3.HttpConnectionManager"
BUFFER_TYPE = f"{_TYPES}.http.buffer.v3.Buffer"
BUFFER_ROUTE_TYPE = f"{_TYPES}.http.buffer.v3.BufferPerRoute"
RATE_TYPE = f"{_TYPES}.http.local_ratelimit.v3.LocalRateLimit"
ROUTER_TYPE = f"{_TYPES}.http.router.v3.Router"
_ALL = {"default_value": {"numerator": 100, "denominator": "HUNDRED"}}


def _header(key: str, value: str) -> dict[str, Any]:
    return {
        "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
        "header": {"key": key, "value": value},
    }


def _envoy_route(behaviour: Behaviour) -> dict[str, Any]:
    regex = "(?i)" + path_regex(behaviour.pattern)
    match: dict[str, Any] = {"safe_regex": {"regex": regex}}
    if behaviour.methods is not None:
        methods = "|".join(sorted(behaviour.methods))
        match["headers"] = [
            {
                "name": ":method",
                "string_match": {"safe_regex": {"regex": f"^({methods})$"}},
            }
        ]
    per_filter: dict[str, Any] = {
        "envoy.filters.http.buffer": {
            "@type": BUFFER_ROUTE_TYPE,
            "buffer": {"max_request_bytes": behaviour.max_body},
        }
    }
    if behaviour.rate is not None:
        per_filter["envoy.filters.http.local_ratelimit"] = {
            "@type": RATE_TYPE,
            "stat_prefix": f"edge_{ident(behaviour.name)}",
            # Envoy's local limit is per Envoy instance, not per client address.
            "token_bucket": {
                "max_tokens": behaviour.rate.burst,
                "tokens_per_fill": max(1, round(behaviour.rate.per_second)),
                "fill_interval": "1s",
            },
            "filter_enabled": _ALL,
            "filter_enforced": _ALL,
            "response_headers_to_add": [_header("Retry-After", "1")],
        }
    if behaviour.denied:
        return {
            "name": behaviour.name,
            "match": match,
            "direct_response": {
                "status": 404,
                "body": {"inline_string": NOT_FOUND + "\n"},
            },
            "response_headers_to_add": [
                _header("X-Edge-Route", behaviour.name),
                _header("X-Edge-Origin", behaviour.origin.name),
            ],
        }
    return {
        "name": behaviour.name,
        "match": match,
        "route": {
            "cluster": upstream_name(behaviour.origin.name),
            "timeout": f"{behaviour.timeout:g}s",
            "idle_timeout": f"{behaviour.timeout:g}s",
        },
        "response_headers_to_add": [
            _header("X-Edge-Route", behaviour.name),
            _header("X-Edge-Origin", behaviour.origin.name),
        ],
        "typed_per_filter_config": per_filter,
    }


def _socket(host: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}


def _cluster(table: RouteTable, name: str) -> dict[str, Any]:
    origin = table.origins[name]
    endpoint = {"endpoint": {"address": _socket(origin.host, origin.port)}}
    return {
        "name": upstream_name(name),
        "type": "STRICT_DNS",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": upstream_name(name),
            "endpoints": [{"lb_endpoints": [endpoint]}],
        },
    }


def _envoy_manager(profile: Profile, profile_name: str) -> dict[str, Any]:
    """The HTTP connection manager: the behaviours as routes, then the filters."""
    largest_body = max(b.max_body for b in profile.behaviours)
    return {
        "@type": HCM_TYPE,
        "stat_prefix": "edge",
        "normalize_path": True,
        "merge_slashes": True,
        "path_with_escaped_slashes_action": "UNESCAPE_AND_FORWARD",
        "use_remote_address": True,
        "upgrade_configs": [{"upgrade_type": "websocket"}],
        "route_config": {
            "name": f"edge_{profile_name}",
            "virtual_hosts": [
                {
                    "name": "edge",
                    "domains": ["*"],
                    "routes": [_envoy_route(b) for b in profile.behaviours],
                }
            ],
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.local_ratelimit",
                "typed_config": {"@type": RATE_TYPE, "stat_prefix": "edge_rate"},
            },
            {
                "name": "envoy.filters.http.buffer",
                "typed_config": {
                    "@type": BUFFER_TYPE,
                    "max_request_bytes": largest_body,
                },
            },
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": ROUTER_TYPE},
            },
        ],
    }


def envoy_config(
    table: RouteTable, profile_name: str, *, listen: str = "127.0.0.1:8000"
) -> str:
    """An Envoy v3 bootstrap as JSON (Envoy reads JSON as YAML: `envoy -c FILE`)."""
    profile = table.profiles[profile_name]
    for behaviour in profile.behaviours:
        if behaviour.origin.static:
            raise ExportError(
                f"{behaviour.name!r} serves the directory of "
                f"{behaviour.origin.name!r}: Envoy serves no files; export nginx, or "
                f"put the files behind an http origin"
            )
    host, _, port = listen.rpartition(":")
    manager = _envoy_manager(profile, profile_name)
    listener = {
        "name": "edge",
        "address": _socket(host, int(port)),
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": manager,
                    }
                ]
            }
        ],
    }
    used = sorted({b.origin.name for b in profile.behaviours if not b.denied})
    bootstrap = {
        "static_resources": {
            "listeners": [listener],
            "clusters": [_cluster(table, name) for name in used],
        }
    }
    return json.dumps(bootstrap, indent=2) + "\n"
