"""The table's visitor-side limits and caching, as nginx directives.

The route table's `[listener]` and `[websockets]` limits (request header and body
deadlines, connections per client address, websockets per address) and a
behaviour's `cache_control` are read where the table has them; a table without them
gets nginx's equivalents of the Python edge's defaults. What nginx says differently:

- `client_body_timeout` is the time between two reads of the body; nginx has no
  deadline for the whole body (the Python edge's `body_timeout`);
- `limit_conn` counts a client address's requests in progress, not its idle
  kept-alive connections;
- a websocket's idle timeout is its behaviour's `timeout` (nginx's proxy read and
  send timeouts apply to the upgraded connection).
"""

from __future__ import annotations

from typing import Any

from edge_router.routes import Behaviour, RouteTable

# The Python edge's defaults (its ListenerLimits and WebsocketLimits).
HEADER_TIMEOUT = 10.0
BODY_IDLE_TIMEOUT = 10.0
MAX_CONNECTIONS_PER_ADDRESS = 512
WEBSOCKETS_PER_ADDRESS = 32


def _limit(section: Any, name: str, default: float) -> float:
    return float(getattr(section, name, default) if section is not None else default)


def _ms(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def http_lines(table: RouteTable) -> list[str]:
    """The zones and deadlines of the `http` block."""
    listener = getattr(table, "listener", None)
    headers = _limit(listener, "header_timeout", HEADER_TIMEOUT)
    body = _limit(listener, "body_idle_timeout", BODY_IDLE_TIMEOUT)
    return [
        f"client_header_timeout {_ms(headers)};",
        f"client_body_timeout {_ms(body)};",
        "limit_conn_zone $binary_remote_addr zone=edge_per_address:10m;",
        # Only upgrade requests have a key: the websocket cap counts nothing else.
        'map $http_upgrade $edge_websocket_address { "" ""; '
        "default $binary_remote_addr; }",
        "limit_conn_zone $edge_websocket_address zone=edge_websockets:10m;",
        "limit_conn_status 429;",
    ]


def server_lines(table: RouteTable) -> list[str]:
    """The per-address caps of the server block."""
    listener = getattr(table, "listener", None)
    websockets = getattr(table, "websockets", None)
    per_address = _limit(
        listener, "max_connections_per_address", MAX_CONNECTIONS_PER_ADDRESS
    )
    sockets = _limit(websockets, "max_per_address", WEBSOCKETS_PER_ADDRESS)
    return [
        f"limit_conn edge_per_address {int(per_address)};",
        f"limit_conn edge_websockets {int(sockets)};",
    ]


def cache_lines(behaviour: Behaviour) -> list[str]:
    """A behaviour's `cache_control` replaces the origin's; none: the edge adds none."""
    value = getattr(behaviour, "cache_control", None)
    if not value:
        return []
    return ["proxy_hide_header Cache-Control;", f'add_header Cache-Control "{value}";']
