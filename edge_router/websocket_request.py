"""One websocket through an edge worker (edge_router/app.py).

Normalise the path, match the behaviour (a deny or a directory refuses before the
handshake), hold at most `max_per_address` open from one visitor's address, relay it
to the origin (edge_router/websocket.py) in a span when the behaviour's ratio draws
it, then count and log it once it closes.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from yarl import URL

from edge_router.accesslog import wall_clock
from edge_router.asgi_types import Receive, Scope, Send
from edge_router.headers import WEBSOCKET_HANDSHAKE, request_headers
from edge_router.paths import BadPath
from edge_router.proxy import Route
from edge_router.websocket import forward_websocket, refuse_websocket

if TYPE_CHECKING:
    from edge_router.app import Edge


async def websocket_request_handle(
    edge: Edge, scope: Scope, receive: Receive, send: Send
) -> None:
    """Relay one websocket (or refuse it), then count and log it."""
    arrived = time.perf_counter()
    wall = wall_clock()
    raw_path = scope.get("raw_path")
    raw = raw_path.decode("latin-1") if raw_path else scope["path"]
    client = scope["client"][0] if scope.get("client") else "-"
    headers, seen = request_headers(
        scope["headers"],
        client_ip=client,
        scheme=scope.get("scheme", "ws"),
        skip=WEBSOCKET_HANDSHAKE | edge.tracing.skip,
    )
    try:
        path = edge.path_normalise(raw)
    except BadPath:
        await send({"type": "websocket.close", "code": 1008})
        return
    route, _ = edge.route_pick("GET", path, seen.get(b"cookie"))
    if route.behaviour.denied or route.site is not None:
        # Nothing to reach (a deny), or a directory, which has no websockets:
        # refused before the handshake (403).
        await send({"type": "websocket.close", "code": 1008})
        return
    query: bytes = scope.get("query_string", b"")
    target = path + ("?" + query.decode("latin-1") if query else "")
    url = URL(route.origin_url + target, encoded=True)
    status, trace_id = await _websocket_traced(
        edge, route, scope, receive, send, url=url, headers=headers, seen=seen
    )
    route.metrics.count(status)
    edge.log.record(
        started_wall=wall,
        client=client,
        method="WEBSOCKET",
        path=path,
        route=route.behaviour.name,
        origin=route.behaviour.origin.name,
        status=status,
        sent=0,
        duration=time.perf_counter() - arrived,
        trace_id=trace_id,
    )


async def _websocket_traced(
    edge: Edge,
    route: Route,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    url: URL,
    headers: list[tuple[str, str]],
    seen: dict[bytes, bytes],
) -> tuple[int, str]:
    """Relay the websocket in a server span and a client span when the behaviour's
    ratio draws it, else with a not-sampled `traceparent` (tracing on) or as it is;
    its status and trace id for the log."""
    tracing = edge.tracing
    statuses: list[int] = []
    traced_ids: list[str] = []

    async def relay(receive: Receive, send: Send) -> None:
        statuses.append(
            await _relay(edge, route, scope, receive, send, url=url, headers=headers)
        )

    async def inside(receive: Receive, send: Send) -> None:
        traced_ids.append(tracing.trace_id())
        if not traced_ids[0]:
            await relay(receive, send)
            return
        tracing.annotate(route.span_attributes, edge.canary_percent())
        # The client span lasts the connection to the origin, as the server
        # span lasts the visitor's.
        origin = route.behaviour.origin
        with tracing.client_span(
            "GET", str(url), origin.host, origin.port, headers
        ) as span:
            await relay(receive, send)
            tracing.client_answered(span, statuses[0] if statuses else 502)

    trace_id = tracing.visitor_trace_id(seen)
    if tracing.sampled(route.behaviour.trace):
        await tracing.traced(scope, receive, send, inside)
        trace_id = traced_ids[0]
    elif tracing.enabled:
        trace_id, parent = tracing.untraced_parent(seen)
        headers.append(("traceparent", parent))
        await relay(receive, send)
    else:
        await relay(receive, send)
    return statuses[0], trace_id


async def _relay(
    edge: Edge,
    route: Route,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    url: URL,
    headers: list[tuple[str, str]],
) -> int:
    """Relay one websocket to its origin (at most `max_per_address` open from
    one visitor's address: else 429); its status for the log."""
    limits = edge.table.websockets
    client = scope["client"][0] if scope.get("client") else "-"
    open_here = edge.websockets_by_address
    if open_here[client] >= limits.max_per_address:
        return await refuse_websocket(scope, send, 429, route.edge_headers)
    open_here[client] += 1
    route.metrics.active += 1
    try:
        return await forward_websocket(
            edge.websocket_session, route, scope, receive, send,
            url=url, headers=headers, extra=route.edge_headers,
            idle_timeout=limits.idle_timeout,
        )  # fmt: skip
    finally:
        route.metrics.active -= 1
        open_here[client] -= 1
        if not open_here[client]:
            del open_here[client]
