"""The table's visitor-side limits and caching, as nginx directives.

The route table's `[listener]` and `[websockets]` limits (edge_router/listener.py:
request header and body deadlines, connections per client address, websockets per
address) and a behaviour's `cache_control`. What nginx says differently:

- `client_body_timeout` is the time between two reads of the body
  (`body_idle_timeout`); nginx has no deadline for the whole body (`body_timeout`);
- `client_header_timeout` answers 408 as the Python edge does, but nginx closes the
  connection without sending it;
- `limit_conn` counts a client address's requests in progress, not its idle
  kept-alive connections, and over all of nginx's workers (the Python edge: per
  worker);
- the websocket cap is checked in a location only handshakes reach (a request with
  an `Upgrade` header), so a plain request pays nothing for it;
- a websocket's idle timeout is its behaviour's `timeout` (nginx's proxy read and
  send timeouts apply to the upgraded connection), not `[websockets] idle_timeout`;
  nginx has no pool of its own for websockets (`pool`).
"""

from __future__ import annotations

from edge_router.routes import Behaviour, RouteTable


def _ms(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def http_lines(table: RouteTable) -> list[str]:
    """The zones and deadlines of the `http` block."""
    listener = table.listener
    return [
        f"client_header_timeout {_ms(listener.header_timeout)};",
        f"client_body_timeout {_ms(listener.body_idle_timeout)};",
        "limit_conn_zone $binary_remote_addr zone=edge_per_address:10m;",
        # Only websocket handshakes reach a location with this cap (nginx_conf.py:
        # `_upgrade_location`): other requests never look it up.
        "limit_conn_zone $binary_remote_addr zone=edge_websockets:10m;",
        "limit_conn_status 429;",
    ]


def server_lines(table: RouteTable) -> list[str]:
    """The per-address cap of the server block."""
    return [
        f"limit_conn edge_per_address {table.listener.max_connections_per_address};",
    ]


def websocket_lines(table: RouteTable) -> list[str]:
    """The caps of a location only websocket handshakes reach: a location's
    `limit_conn` replaces the server's, so the per-address one is said again."""
    return [
        *server_lines(table),
        f"limit_conn edge_websockets {table.websockets.max_per_address};",
    ]


def cache_lines(behaviour: Behaviour) -> list[str]:
    """A behaviour's `cache_control` replaces the origin's; none: the edge adds none."""
    if not behaviour.cache_control:
        return []
    return [
        "proxy_hide_header Cache-Control;",
        f'add_header Cache-Control "{behaviour.cache_control}" always;',
    ]
