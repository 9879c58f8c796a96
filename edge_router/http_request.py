"""One HTTP request through an edge worker (edge_router/app.py).

Normalise the path, answer /_edge/healthz (the rest of /_edge/ is on the admin
listener: 404 here), match the behaviour in the mode's profile (read once, so a
request finishes on the origin it started on), admit (rate, body size), answer from
a directory or forward to the origin (in a span when the behaviour's ratio draws
it), then count and log.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from edge_router import admin, metrics
from edge_router.accesslog import wall_clock
from edge_router.asgi_types import Receive, Scope, Send
from edge_router.headers import request_headers
from edge_router.paths import BadPath
from edge_router.proxy import (
    CLIENT_GONE,
    Exchange,
    Outcome,
    Route,
    forward,
    refuse,
    take_body,
)

if TYPE_CHECKING:
    from edge_router.app import Edge

EDGE_ROUTE = [(b"x-edge-route", b"edge"), (b"x-edge-origin", b"edge")]
NO_ROUTE = [(b"x-edge-route", b"none"), (b"x-edge-origin", b"none")]


async def http_request_handle(
    edge: Edge, scope: Scope, receive: Receive, send: Send
) -> None:
    """Answer one request, then count it (per route) and log it."""
    arrived = time.perf_counter()
    wall = wall_clock()
    method: str = scope["method"]
    raw_path = scope.get("raw_path")
    raw = raw_path.decode("latin-1") if raw_path else scope["path"]
    client = scope["client"][0] if scope.get("client") else "-"
    tracing = edge.tracing
    headers, seen = request_headers(
        scope["headers"],
        client_ip=client,
        scheme=scope.get("scheme", "http"),
        skip=tracing.skip,
    )
    request = Exchange(
        scope, receive, send, method, client, headers, seen, arrived,
        tracing.visitor_trace_id(seen),
    )  # fmt: skip
    path, outcome, route, route_name = await _http_answer(edge, request, raw)
    duration = time.perf_counter() - arrived
    origin_name = route_name
    if route is not None:
        route.metrics.count(outcome.status)
        route.metrics.latency.observe(duration)
        if path == edge.watched_path:
            metrics.watched_latency.observe(duration)
        route_name, origin_name = route.behaviour.name, route.behaviour.origin.name
    edge.log.record(
        started_wall=wall,
        client=client,
        method=method,
        path=path,
        route=route_name,
        origin=origin_name,
        status=outcome.status,
        sent=outcome.sent,
        duration=duration,
        trace_id=request.trace_id,
        span_id=request.span_id,
    )


async def _http_answer(
    edge: Edge, request: Exchange, raw: str
) -> tuple[str, Outcome, Route | None, str]:
    """(path for the log, outcome, the route or None, the log's route name when the
    edge answered itself: "none" for a bad path, "edge" for /_edge/)."""
    try:
        path = edge.path_normalise(raw)
    except BadPath:
        return raw, await refuse(request, 400, NO_ROUTE), None, "none"
    if path.startswith(admin.PREFIX):
        # Only the health check is public; the rest is on the admin listener.
        if admin.endpoint_path(path) != admin.HEALTH:
            return path, await refuse(request, 404, EDGE_ROUTE), None, "edge"
        status, sent = await admin.handle(
            admin.AdminRequest(
                edge, request.method, request.seen, request.receive, request.send,
                EDGE_ROUTE,
            ),
            path,
        )  # fmt: skip
        return path, Outcome(status, sent), None, "edge"
    cookie = request.seen.get(b"cookie")
    route, new_cookie = edge.route_pick(request.method, path, cookie)
    extra = route.edge_headers
    if new_cookie is not None:
        extra = [*extra, new_cookie]
    outcome = await _proxy(
        edge, route, request, path, extra, drew_visitor=new_cookie is not None
    )
    return path, outcome, route, "none"


async def _proxy(
    edge: Edge,
    route: Route,
    request: Exchange,
    path: str,
    extra: list[tuple[bytes, bytes]],
    *,
    drew_visitor: bool = False,
) -> Outcome:
    """Admit and forward the request: in a server span when the behaviour's
    ratio draws it (see edge_router/tracing.py), else with a not-sampled
    `traceparent` and no span at all. A deny and a static page are never traced."""
    if route.behaviour.denied:
        return await refuse(request, 404, extra)
    tracing = edge.tracing
    if not tracing.enabled or route.site is not None:
        # Static files are never traced (the edge serves them itself).
        return await _answer(edge, route, request, path, extra, drew_visitor)
    if not tracing.sampled(route.behaviour.trace):
        request.trace_id, parent = tracing.untraced_parent(request.seen)
        request.headers.append(("traceparent", parent))
        return await _answer(edge, route, request, path, extra, drew_visitor)
    outcomes: list[Outcome] = []

    async def inside(receive: Receive, send: Send) -> None:
        request.receive, request.send = receive, send
        request.trace_id = tracing.trace_id()
        request.span_id = tracing.span_id()
        if not request.trace_id:
            # An excluded URL (static files) has no server span, and no client
            # span either: it would be a trace of its own, about nothing.
            outcomes.append(
                await _answer(edge, route, request, path, extra, drew_visitor)
            )
            return
        tracing.annotate(route.span_attributes, edge.canary_percent())
        outcomes.append(
            await _answer(edge, route, request, path, extra, drew_visitor, traced=True)
        )

    await tracing.traced(request.scope, request.receive, request.send, inside)
    return outcomes[0]


async def _answer(
    edge: Edge,
    route: Route,
    request: Exchange,
    path: str,
    extra: list[tuple[bytes, bytes]],
    drew_visitor: bool,
    traced: bool = False,
) -> Outcome:
    """Admit (rate, body) and answer: from a directory, or from the origin
    (`traced`: in a client span, the request being in a server span)."""
    if route.buckets is not None:
        wait = route.buckets.take(request.client)
        if wait:
            retry = (b"retry-after", str(wait).encode())
            return await refuse(request, 429, [*extra, retry])
    if route.site is not None:
        # A body (a GET may carry one) is read and dropped under the same limits
        # and deadlines as a proxied one, so a slow one cannot hold the connection.
        body = await take_body(route, request, extra)
        if isinstance(body, Outcome):
            return body
        return await route.site.serve(request, path, extra, personal=drew_visitor)
    query: bytes = request.scope.get("query_string", b"")
    target = path + "?" + query.decode("latin-1") if query else path
    route.metrics.active += 1
    try:
        return await forward(
            edge.origins, route, request,
            target=target, extra=extra, personal=drew_visitor,
            tracing=edge.tracing if traced else None,
        )  # fmt: skip
    except OSError:
        # The visitor's connection broke while the edge was answering.
        return Outcome(CLIENT_GONE)
    finally:
        route.metrics.active -= 1
