"""The edge's ASGI app: `uvicorn edge_router.app:app` (see the Procfile).

Per request: normalise the path, answer /_edge/ itself, pick the profile from the mode
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

import aiohttp
import redis.asyncio as aioredis
from yarl import URL

from common.tracing.logs import logging_install
from edge_router import admin, metrics
from edge_router.accesslog import AccessLog, wall_clock
from edge_router.asgi_types import Receive, Scope, Send
from edge_router.config import EdgeConfig, config_from_env
from edge_router.headers import WEBSOCKET_HANDSHAKE, request_headers
from edge_router.modes import Mode, ModeFollower
from edge_router.paths import BadPath, match_key, normalise
from edge_router.proxy import CLIENT_GONE, Exchange, Outcome, Route, forward, refuse
from edge_router.routes import RouteTable, load_table
from edge_router.selection import profile_for
from edge_router.static import StaticSite
from edge_router.tracing import EdgeTracing
from edge_router.upstream import session_create
from edge_router.websocket import forward_websocket

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
    redis: aioredis.Redis
    follower: ModeFollower
    log: AccessLog
    _publisher: asyncio.Task[None]

    def __init__(self, tracing: EdgeTracing) -> None:
        self.ready = False
        self.tracing = tracing
        self._paths: dict[str, str] = {}
        self._routed: dict[tuple[str, str, str], Route] = {}

    async def startup(self) -> None:
        # The stack's one line format, each line with its trace (tracing/logs.py).
        logging_install(os.environ.get("LOG_LEVEL", "INFO"), adopt=("uvicorn",))
        self.config = config_from_env()
        self.table = load_table(self.config.routes_file, env=self.config.env)
        sites = {
            origin.name: StaticSite(origin)
            for origin in self.table.origins.values()
            if origin.static
        }
        self.routes = {
            id(behaviour): Route.build(
                behaviour, profile.name, sites.get(behaviour.origin.name)
            )
            for profile in self.table.profiles.values()
            for behaviour in profile.behaviours
        }
        self.log = AccessLog(self.config.access_log)
        # One session for every request and websocket of this worker.
        self.session = session_create(
            connections=self.config.upstream_connections,
            per_origin=self.config.upstream_per_origin,
            keepalive=self.config.upstream_keepalive,
        )
        self.redis = aioredis.from_url(
            self.config.redis_url, socket_connect_timeout=1.0, socket_timeout=2.0
        )
        self.follower = ModeFollower(
            aioredis.from_url(self.config.redis_url, socket_connect_timeout=1.0),
            self.config.mode_key,
            self.config.default_mode,
            self.config.poll_interval,
            on_change=_count_change,
        )
        metrics.forget_dead_workers()
        await self.follower.start()
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
        await self.follower.stop()
        await self.session.close()
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
        scope_headers = scope["headers"]
        trace_id = tracing.trace_id(scope_headers)
        span_id = tracing.span_id() if trace_id else ""
        headers, seen = request_headers(
            scope_headers,
            client_ip=client,
            scheme=scope.get("scheme", "http"),
            skip=tracing.skip(trace_id),
        )
        request = Exchange(
            scope, receive, send, method, client, headers, seen, arrived, trace_id
        )
        route: Route | None = None
        route_name, origin_name = "none", "none"
        try:
            path = self._normalise(raw)
        except BadPath:
            outcome = await refuse(request, 400, NO_ROUTE)
            path = raw
        else:
            if path.startswith(admin.PREFIX):
                route_name = origin_name = "edge"
                status, sent = await admin.handle(
                    self, path, method, seen, receive, send, EDGE_ROUTE
                )
                outcome = Outcome(status, sent)
            else:
                route, new_cookie = self._route(method, path, seen.get(b"cookie"))
                extra = route.edge_headers
                if new_cookie is not None:
                    extra = [*extra, new_cookie]
                outcome = await self._proxy(route, request, path, extra)
        duration = time.perf_counter() - arrived
        if route is not None:
            route.metrics.count(outcome.status)
            route.metrics.latency.observe(duration)
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
            trace_id=trace_id,
            span_id=span_id,
        )

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
        (remembered), said on the server span; and a canary cookie to set, if any."""
        mode = self.follower.current
        profile, new_cookie = profile_for(mode, self.table, cookie)
        key = (profile.name, method, path)
        route = self._routed.get(key)
        if route is None:
            route = self.routes[id(profile.match(method, match_key(path)))]
            if len(self._routed) >= ROUTING_MEMORY:
                self._routed.clear()
            self._routed[key] = route
        self.tracing.annotate(
            route.span_attributes, mode.percent if mode.mode == "canary" else None
        )
        return route, new_cookie

    async def _proxy(
        self,
        route: Route,
        request: Exchange,
        path: str,
        extra: list[tuple[bytes, bytes]],
    ) -> Outcome:
        if route.buckets is not None:
            wait = route.buckets.take(request.client)
            if wait:
                retry = (b"retry-after", str(wait).encode())
                return await refuse(request, 429, [*extra, retry])
        if route.site is not None:
            return await route.site.serve(request, path, extra)
        query: bytes = request.scope.get("query_string", b"")
        target = path + "?" + query.decode("latin-1") if query else path
        route.metrics.active += 1
        try:
            call = forward(self.session, route, request, target=target, extra=extra)
            if self.tracing.without_client_span(request.trace_id):
                with self.tracing.suppressed():
                    return await call
            return await call
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
        trace_id = tracing.trace_id(scope["headers"])
        headers, seen = request_headers(
            scope["headers"],
            client_ip=client,
            scheme=scope.get("scheme", "ws"),
            skip=WEBSOCKET_HANDSHAKE | tracing.skip(trace_id),
        )
        try:
            path = self._normalise(raw)
        except BadPath:
            await send({"type": "websocket.close", "code": 1008})
            return
        route, _ = self._route("GET", path, seen.get(b"cookie"))
        if route.site is not None:
            # A directory has no websockets: refused before the handshake (403).
            await send({"type": "websocket.close", "code": 1008})
            return
        query: bytes = scope.get("query_string", b"")
        target = path + ("?" + query.decode("latin-1") if query else "")
        route.metrics.active += 1
        try:
            status = await forward_websocket(
                self.session, route, scope, receive, send,
                url=URL(route.origin_url + target, encoded=True),
                headers=headers, extra=route.edge_headers,
            )  # fmt: skip
        finally:
            route.metrics.active -= 1
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


def _count_change(previous: Mode, current: Mode) -> None:
    metrics.MODE_CHANGES.labels(current.mode).inc()


tracing = EdgeTracing()
app = tracing.wrap(Edge(tracing))
