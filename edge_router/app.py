"""The edge's ASGI app: `uvicorn edge_router.app:app` (see the Procfile).

One `Edge` per worker: built at lifespan start-up, it keeps what every request
needs (the route table, the sessions to the origins, the mode) and remembers the
paths and routes it has seen. A request is answered in edge_router/http_request.py,
a websocket in edge_router/websocket_request.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections import Counter

import aiohttp
import redis.asyncio as aioredis

from common.tracing.logs import logging_install
from edge_router import metrics
from edge_router.accesslog import AccessLog
from edge_router.admin_listener import AdminListener
from edge_router.asgi_types import Receive, Scope, Send
from edge_router.config import EdgeConfig, config_from_env
from edge_router.control_room import ControlRoom, watched_path
from edge_router.http_request import http_request_handle
from edge_router.modes import Mode, ModeFollower, redis_client
from edge_router.origin_client import OriginPool
from edge_router.paths import match_key, normalise
from edge_router.proxy import Route
from edge_router.routes import RouteTable, load_table
from edge_router.selection import profile_for
from edge_router.serving import EdgeHttpProtocol
from edge_router.static import StaticSite
from edge_router.tracing import EdgeTracing
from edge_router.upstream import session_create
from edge_router.websocket_request import websocket_request_handle

logger = logging.getLogger("edge_router")
# Requests' counts, latencies and in-flight numbers reach /_edge/metrics this often.
METRICS_PUBLISH_SECONDS = 0.25
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
    origins: OriginPool
    # The control room's readings (edge_router/control_room/sources.py).
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
        # Websockets open per visitor's address (edge_router/websocket_request.py).
        self.websockets_by_address: Counter[str] = Counter()

    async def startup(self) -> None:
        # The stack's one line format, each line with its trace (tracing/logs.py).
        logging_install(os.environ.get("LOG_LEVEL", "INFO"), adopt=("uvicorn",))
        self.config = config_from_env()
        self.table = load_table(self.config.routes_file, env=self.config.env)
        self.routes = routes_build(self.table)
        # Read by uvicorn's protocol (Procfile: --http ...EdgeHttpProtocol) for every
        # connection; lifespan start-up ends before the first is accepted.
        EdgeHttpProtocol.limits = self.table.listener
        self.log = AccessLog(self.config.access_log)
        self.watched_path = watched_path(self.config.env)
        self._sessions_open()
        self.redis = redis_client(self.config.redis_url)
        self.follower = _follower_build(self.config)
        metrics.forget_dead_workers()
        await self.follower.start()
        # Before the admin listener, which serves it.
        self.control = ControlRoom(self)
        self.admin_listener = AdminListener(
            self, self.config.admin_host, self.config.admin_port
        )
        await self.admin_listener.start()
        self._publisher = asyncio.create_task(self._publish_metrics())
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

    def _sessions_open(self) -> None:
        # One pool for every request of this worker.
        self.origins = OriginPool(
            connections=self.config.upstream_connections,
            per_origin=self.config.upstream_per_origin,
            keepalive=self.config.upstream_keepalive,
        )
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

    async def _publish_metrics(self) -> None:
        while True:
            self._metrics_publish()
            await asyncio.sleep(METRICS_PUBLISH_SECONDS)

    def _metrics_publish(self) -> None:
        """What the requests since the last time moved, to the shared files."""
        for route_metrics in {
            id(r.metrics): r.metrics for r in self.routes.values()
        }.values():
            route_metrics.publish()
        metrics.watched_latency.publish()

    async def shutdown(self) -> None:
        if not self.ready:
            return
        self._publisher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._publisher
        self._metrics_publish()
        await self.admin_listener.stop()
        await self.control.close()
        await self.follower.stop()
        await self.origins.close()
        await self.session.close()
        await self.websocket_session.close()
        await self.redis.aclose()
        self.log.close()
        metrics.worker_exit()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await http_request_handle(self, scope, receive, send)
        elif kind == "websocket":
            await websocket_request_handle(self, scope, receive, send)
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

    def canary_percent(self) -> int | None:
        """The strangler's share in canary mode (for a span), else None."""
        mode = self.follower.current
        return mode.percent if mode.mode == "canary" else None

    def path_normalise(self, raw: str) -> str:
        """`normalise`, remembered; raises BadPath (not remembered)."""
        path = self._paths.get(raw)
        if path is None:
            path = normalise(raw)
            if len(self._paths) >= ROUTING_MEMORY:
                self._paths.clear()
            self._paths[raw] = path
        return path

    def route_pick(
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


def routes_build(table: RouteTable) -> dict[int, Route]:
    """The worker's Route (limits, metrics, static site) for every behaviour of
    every profile, by the behaviour's id."""
    sites = _static_sites(table)
    return {
        id(behaviour): Route.build(
            behaviour,
            profile.name,
            table.listener,
            sites.get((behaviour.origin.name, behaviour.cache_control)),
        )
        for profile in table.profiles.values()
        for behaviour in profile.behaviours
    }


def _follower_build(config: EdgeConfig) -> ModeFollower:
    """The worker's view of the mode in Redis: polled, and pushed when it changes."""
    return ModeFollower(
        redis_client(config.redis_url),
        config.mode_key,
        config.default_mode,
        config.poll_interval,
        on_change=_count_change,
        listener=redis_client(config.redis_url, read_timeout=None),
        cache=config.mode_cache,
    )


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
