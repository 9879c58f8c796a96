"""The edge's ASGI app: `uvicorn edge_router.app:app` (see the Procfile).

Per request: normalise the path, answer /_edge/healthz itself (the rest of /_edge/
is on the admin listener: 404 here), pick the profile from the mode
(read once, so a request finishes on the origin it started on), match the behaviour,
admit (rate, body size), forward, then log and count.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
from collections import Counter

import aiohttp
import redis.asyncio as aioredis
from yarl import URL

from common.tracing.logs import logging_install
from edge_router import admin, metrics
from edge_router.accesslog import AccessLog, wall_clock
from edge_router.admin_listener import AdminListener
from edge_router.asgi_types import Receive, Scope, Send
from edge_router.config import EdgeConfig, config_from_env
from edge_router.control_room import ControlRoom, watched_path
from edge_router.headers import WEBSOCKET_HANDSHAKE, request_headers
from edge_router.modes import Mode, ModeFollower, redis_client
from edge_router.paths import BadPath, match_key, normalise
from edge_router.proxy import (
    CLIENT_GONE,
    Exchange,
    Outcome,
    Route,
    forward,
    refuse,
    take_body,
)
from edge_router.routes import RouteTable, load_table
from edge_router.selection import profile_for
from edge_router.serving import EdgeHttpProtocol
from edge_router.static import StaticSite
from edge_router.tracing import EdgeTracing
from edge_router.upstream import session_create
from edge_router.websocket import forward_websocket, refuse_websocket

logger = logging.getLogger("edge_router")
EDGE_ROUTE = [(b"x-edge-route", b"edge"), (b"x-edge-origin", b"edge")]
NO_ROUTE = [(b"x-edge-route", b"none"), (b"x-edge-origin", b"none")]
IN_FLIGHT_PUBLISH_SECONDS = 0.25
# With CPython's default thresholds (700, 10, 10) the cyclic collector took a tenth
# of a worker's CPU under wrk (py-spy): a proxied request allocates hundreds of
# objects (asyncio, aiohttp, uvicorn). These cut the edge's CPU a request by ~10 %.
GC_THRESHOLDS = (50_000, 20, 100)
# Paths and their routes are remembered per worker (the same few paths come again
# and again); a flood of distinct paths just empties the memory now and then.
ROUTING_MEMORY = 4096


class Edge:
    """One per worker process; everything is built at lifespan start-up."""

    engine = "python"
    config: EdgeConfig
    table: RouteTable
    routes: dict[int, Route]
    session: aiohttp.ClientSession
    websocket_session: aiohttp.ClientSession
    redis: aioredis.Redis
    follower: ModeFollower
    admin_listener: AdminListener
    log: AccessLog
    control: ControlRoom
    watched_path: str
    _publisher: asyncio.Task[None]

    def __init__(self, tracing: EdgeTracing) -> None:
        self.ready = False
        self.tracing = tracing
        self._paths: dict[str, str] = {}
        self._routed: dict[tuple[str, str, str], Route] = {}
        self._websockets_by_address: Counter[str] = Counter()

    async def startup(self) -> None:
        # The stack's one line format, each line with its trace (tracing/logs.py).
        logging_install(os.environ.get("LOG_LEVEL", "INFO"), adopt=("uvicorn",))
        self.config = config_from_env()
        self.table = load_table(self.config.routes_file, env=self.config.env)
        sites = _static_sites(self.table)
        self.routes = {
            id(behaviour): Route.build(
                behaviour,
                profile.name,
                self.table.listener,
                sites.get((behaviour.origin.name, behaviour.cache_control)),
            )
            for profile in self.table.profiles.values()
            for behaviour in profile.behaviours
        }
        # Read by uvicorn's protocol (Procfile: --http ...EdgeHttpProtocol) for every
        # connection; lifespan start-up ends before the first is accepted.
        EdgeHttpProtocol.limits = self.table.listener
        self.log = AccessLog(self.config.access_log)
        self.watched_path = watched_path(self.config.env)
        # One session for every request and websocket of this worker.
        self.session = session_create(
            connections=self.config.upstream_connections,
            per_origin=self.config.upstream_per_origin,
            keepalive=self.config.upstream_keepalive,
        )
        # Websockets have a pool of their own: however many are open and idle,
        # HTTP requests keep every connection of theirs.
        websockets = self.table.websockets
        self.websocket_session = session_create(
            connections=websockets.pool,
            per_origin=websockets.pool,
            keepalive=self.config.upstream_keepalive,
        )
        self.redis = redis_client(self.config.redis_url)
        self.follower = ModeFollower(
            redis_client(self.config.redis_url),
            self.config.mode_key,
            self.config.default_mode,
            self.config.poll_interval,
            on_change=_count_change,
            listener=redis_client(self.config.redis_url, read_timeout=None),
            cache=self.config.mode_cache,
        )
        metrics.forget_dead_workers()
        await self.follower.start()
        # Before the admin listener, which serves it.
        self.control = ControlRoom(self)
        self.admin_listener = AdminListener(
            self, self.config.admin_host, self.config.admin_port
        )
        await self.admin_listener.start()
        self._publisher = asyncio.create_task(self._publish_in_flight())
        # What start-up built lives as long as the worker: out of every collection.
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        self.ready = True
        logger.info(
            "edge ready: routes %s, mode %s, origins %s",
            self.table.source,
            self.follower.current.describe(),
            ", ".join(f"{o.name}={o.url}" for o in self.table.origins.values()),
        )

    async def _publish_in_flight(self) -> None:
        unique = {id(r.metrics): r.metrics for r in self.routes.values()}.values()
        while True:
            for route_metrics in unique:
                route_metrics.publish_in_flight()
            await asyncio.sleep(IN_FLIGHT_PUBLISH_SECONDS)

    async def shutdown(self) -> None:
        if not self.ready:
            return
        self._publisher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._publisher
        await self.admin_listener.stop()
        await self.control.close()
        await self.follower.stop()
        await self.session.close()
        await self.websocket_session.close()
        await self.redis.aclose()
        self.log.close()
        metrics.worker_exit()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.http(scope, receive, send)
        elif kind == "websocket":
            await self.websocket(scope, receive, send)
        elif kind == "lifespan":
            await self.lifespan(receive, send)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as error:  # the message is the operator's error report
                    await send(
                        {"type": "lifespan.startup.failed", "message": str(error)}
                    )
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        arrived = time.perf_counter()
        wall = wall_clock()
        method: str = scope["method"]
        raw_path = scope.get("raw_path")
        raw = raw_path.decode("latin-1") if raw_path else scope["path"]
        client = scope["client"][0] if scope.get("client") else "-"
        tracing = self.tracing
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
        route: Route | None = None
        route_name, origin_name = "none", "none"
        try:
            path = self._normalise(raw)
        except BadPath:
            outcome = await refuse(request, 400, NO_ROUTE)
            path = raw
        else:
            if path.startswith(admin.PREFIX):
                # Only the health check is public; the rest is on the admin listener.
                route_name = origin_name = "edge"
                if admin.endpoint_path(path) == admin.HEALTH:
                    status, sent = await admin.handle(
                        admin.AdminRequest(
                            self, method, seen, receive, send, EDGE_ROUTE
                        ),
                        path,
                    )
                    outcome = Outcome(status, sent)
                else:
                    outcome = await refuse(request, 404, EDGE_ROUTE)
            else:
                route, new_cookie = self._route(method, path, seen.get(b"cookie"))
                extra = route.edge_headers
                if new_cookie is not None:
                    extra = [*extra, new_cookie]
                outcome = await self._proxy(
                    route, request, path, extra, drew_visitor=new_cookie is not None
                )
        duration = time.perf_counter() - arrived
        if route is not None:
            route.metrics.count(outcome.status)
            route.metrics.latency.observe(duration)
            if path == self.watched_path:
                metrics.WATCHED_LATENCY.observe(duration)
            route_name, origin_name = route.behaviour.name, route.behaviour.origin.name
        self.log.record(
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

    def _canary_percent(self) -> int | None:
        mode = self.follower.current
        return mode.percent if mode.mode == "canary" else None

    def _normalise(self, raw: str) -> str:
        """`normalise`, remembered; raises BadPath (not remembered)."""
        path = self._paths.get(raw)
        if path is None:
            path = normalise(raw)
            if len(self._paths) >= ROUTING_MEMORY:
                self._paths.clear()
            self._paths[raw] = path
        return path

    def _route(
        self, method: str, path: str, cookie: bytes | None
    ) -> tuple[Route, tuple[bytes, bytes] | None]:
        """The behaviour for a normalised path in the current mode's profile
        (remembered); and a canary cookie to set, if any."""
        mode = self.follower.current
        profile, new_cookie = profile_for(mode, self.table, cookie)
        key = (profile.name, method, path)
        route = self._routed.get(key)
        if route is None:
            route = self.routes[id(profile.match(method, match_key(path)))]
            if len(self._routed) >= ROUTING_MEMORY:
                self._routed.clear()
            self._routed[key] = route
        return route, new_cookie

    async def _proxy(
        self,
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
        tracing = self.tracing
        if not tracing.enabled or route.site is not None:
            # Static files are never traced (the edge serves them itself).
            return await self._answer(route, request, path, extra, drew_visitor)
        if not tracing.sampled(route.behaviour.trace):
            request.trace_id, parent = tracing.untraced_parent(request.seen)
            request.headers.append(("traceparent", parent))
            return await self._answer(route, request, path, extra, drew_visitor)
        outcomes: list[Outcome] = []

        async def inside(receive: Receive, send: Send) -> None:
            request.receive, request.send = receive, send
            request.trace_id = tracing.trace_id()
            request.span_id = tracing.span_id()
            if not request.trace_id:
                # An excluded URL (static files) has no server span, and no client
                # span either: it would be a trace of its own, about nothing.
                outcomes.append(
                    await self._answer(route, request, path, extra, drew_visitor)
                )
                return
            tracing.annotate(route.span_attributes, self._canary_percent())
            outcomes.append(
                await self._answer(
                    route, request, path, extra, drew_visitor, traced=True
                )
            )

        await tracing.traced(request.scope, request.receive, request.send, inside)
        return outcomes[0]

    async def _answer(
        self,
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
                self.session, route, request,
                target=target, extra=extra, personal=drew_visitor,
                tracing=self.tracing if traced else None,
            )  # fmt: skip
        except OSError:
            # The visitor's connection broke while the edge was answering.
            return Outcome(CLIENT_GONE)
        finally:
            route.metrics.active -= 1

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        arrived = time.perf_counter()
        wall = wall_clock()
        raw_path = scope.get("raw_path")
        raw = raw_path.decode("latin-1") if raw_path else scope["path"]
        client = scope["client"][0] if scope.get("client") else "-"
        tracing = self.tracing
        headers, seen = request_headers(
            scope["headers"],
            client_ip=client,
            scheme=scope.get("scheme", "ws"),
            skip=WEBSOCKET_HANDSHAKE | tracing.skip,
        )
        trace_id = tracing.visitor_trace_id(seen)
        try:
            path = self._normalise(raw)
        except BadPath:
            await send({"type": "websocket.close", "code": 1008})
            return
        route, _ = self._route("GET", path, seen.get(b"cookie"))
        if route.behaviour.denied or route.site is not None:
            # Nothing to reach (a deny), or a directory, which has no websockets:
            # refused before the handshake (403).
            await send({"type": "websocket.close", "code": 1008})
            return
        query: bytes = scope.get("query_string", b"")
        target = path + ("?" + query.decode("latin-1") if query else "")
        url = URL(route.origin_url + target, encoded=True)
        statuses: list[int] = []
        traced_ids: list[str] = []

        async def relay(receive: Receive, send: Send) -> None:
            statuses.append(
                await self._relay_websocket(
                    route, scope, receive, send, url=url, headers=headers
                )
            )

        async def inside(receive: Receive, send: Send) -> None:
            traced_ids.append(tracing.trace_id())
            if not traced_ids[0]:
                await relay(receive, send)
                return
            tracing.annotate(route.span_attributes, self._canary_percent())
            # The client span lasts the connection to the origin, as the server
            # span lasts the visitor's.
            origin = route.behaviour.origin
            with tracing.client_span(
                "GET", str(url), origin.host, origin.port, headers
            ) as span:
                await relay(receive, send)
                tracing.client_answered(span, statuses[0] if statuses else 502)

        if tracing.sampled(route.behaviour.trace):
            await tracing.traced(scope, receive, send, inside)
            trace_id = traced_ids[0]
        elif tracing.enabled:
            trace_id, parent = tracing.untraced_parent(seen)
            headers.append(("traceparent", parent))
            await relay(receive, send)
        else:
            await relay(receive, send)
        status = statuses[0]
        route.metrics.count(status)
        self.log.record(
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

    async def _relay_websocket(
        self,
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
        limits = self.table.websockets
        client = scope["client"][0] if scope.get("client") else "-"
        open_here = self._websockets_by_address
        if open_here[client] >= limits.max_per_address:
            return await refuse_websocket(scope, send, 429, route.edge_headers)
        open_here[client] += 1
        route.metrics.active += 1
        try:
            return await forward_websocket(
                self.websocket_session, route, scope, receive, send,
                url=url, headers=headers, extra=route.edge_headers,
                idle_timeout=limits.idle_timeout,
            )  # fmt: skip
        finally:
            route.metrics.active -= 1
            open_here[client] -= 1
            if not open_here[client]:
                del open_here[client]


def _static_sites(table: RouteTable) -> dict[tuple[str, str | None], StaticSite]:
    """A StaticSite per static origin and Cache-Control its behaviours set (a
    behaviour's `cache_control` replaces its directory origin's)."""
    sites: dict[tuple[str, str | None], StaticSite] = {}
    for profile in table.profiles.values():
        for behaviour in profile.behaviours:
            origin, cache = behaviour.origin, behaviour.cache_control
            if origin.static and (origin.name, cache) not in sites:
                sites[origin.name, cache] = StaticSite(origin, cache_control=cache)
    return sites


def _count_change(previous: Mode, current: Mode) -> None:
    metrics.MODE_CHANGES.labels(current.mode).inc()


tracing = EdgeTracing()
app = tracing.wrap(Edge(tracing))
