"""The edge's ASGI app: `uvicorn edge_router.app:app` (see the Procfile).

Per request: normalise the path, answer /_edge/ itself, pick the profile from the mode
(read once, so a request finishes on the origin it started on), match the behaviour,
admit (rate, body size), forward, then log and count.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time

import aiohttp
import redis.asyncio as aioredis

from edge_router import admin, metrics
from edge_router.accesslog import AccessLog, wall_clock
from edge_router.asgi_types import Receive, Scope, Send
from edge_router.config import EdgeConfig, config_from_env
from edge_router.errors import send_error
from edge_router.headers import WEBSOCKET_HANDSHAKE, request_headers
from edge_router.modes import Mode, ModeFollower
from edge_router.paths import BadPath, match_key, normalise
from edge_router.proxy import CLIENT_GONE, Outcome, Route, forward
from edge_router.routes import RouteTable, load_table
from edge_router.selection import profile_for
from edge_router.upstream import Pool
from edge_router.websocket import forward_websocket

logger = logging.getLogger("edge_router")
EDGE_ROUTE = [(b"x-edge-route", b"edge"), (b"x-edge-origin", b"edge")]
NO_ROUTE = [(b"x-edge-route", b"none"), (b"x-edge-origin", b"none")]
IN_FLIGHT_PUBLISH_SECONDS = 0.25


class Edge:
    """One per worker process; everything is built at lifespan start-up."""

    config: EdgeConfig
    table: RouteTable
    routes: dict[int, Route]
    session: aiohttp.ClientSession
    pools: dict[str, Pool]
    redis: aioredis.Redis
    follower: ModeFollower
    log: AccessLog
    _publisher: asyncio.Task[None]

    def __init__(self) -> None:
        self.ready = False

    async def startup(self) -> None:
        if not logging.getLogger().handlers:
            logging.basicConfig(
                level=os.environ.get("LOG_LEVEL", "INFO").upper(),
                format="%(levelname)s %(name)s: %(message)s",
            )
        self.config = config_from_env()
        self.table = load_table(self.config.routes_file, env=self.config.env)
        self.pools = {
            origin.name: Pool(
                origin.host,
                origin.port,
                keepalive=self.config.upstream_keepalive,
                limit=self.config.upstream_connections,
            )
            for origin in self.table.origins.values()
        }
        self.routes = {
            id(behaviour): Route.build(behaviour, self.pools[behaviour.origin.name])
            for profile in self.table.profiles.values()
            for behaviour in profile.behaviours
        }
        self.log = AccessLog(self.config.access_log)
        # Websockets only: plain HTTP goes through the lean pools above.
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=self.config.upstream_connections,
                limit_per_host=0,
                keepalive_timeout=self.config.upstream_keepalive,
                ttl_dns_cache=300,
            ),
            # Each visitor's cookies go to the origin in its own request, never a jar.
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            skip_auto_headers=(
                "User-Agent",
                "Accept",
                "Accept-Encoding",
                "Content-Type",
            ),
            timeout=aiohttp.ClientTimeout(total=None),
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
        for pool in self.pools.values():
            pool.close()
        await self.redis.aclose()
        self.log.flush()
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
        headers, seen, trace_id = request_headers(
            scope["headers"], client_ip=client, scheme=scope.get("scheme", "http")
        )
        route: Route | None = None
        route_name, origin_name = "none", "none"
        try:
            path = normalise(raw)
        except BadPath:
            outcome = Outcome(
                await send_error(send, 400, NO_ROUTE, head=method == "HEAD")
            )
            path = raw
        else:
            if path.startswith(admin.PREFIX):
                route_name = origin_name = "edge"
                status, sent = await admin.handle(
                    self, path, method, seen, receive, send, EDGE_ROUTE
                )
                outcome = Outcome(status, sent)
            else:
                profile, new_cookie = profile_for(
                    self.follower.current, self.table, seen.get(b"cookie")
                )
                route = self.routes[id(profile.match(method, match_key(path)))]
                route_name = route.behaviour.name
                origin_name = route.behaviour.origin.name
                extra = route.edge_headers
                if new_cookie is not None:
                    extra = [*extra, new_cookie]
                outcome = await self._proxy(
                    route,
                    scope,
                    receive,
                    send,
                    path,
                    headers,
                    seen,
                    extra,
                    client,
                    arrived,
                )
        duration = time.perf_counter() - arrived
        if route is not None:
            route.metrics.count(outcome.status)
            route.metrics.latency.observe(duration)
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
        )

    async def _proxy(
        self,
        route: Route,
        scope: Scope,
        receive: Receive,
        send: Send,
        path: str,
        headers: list[tuple[bytes, bytes]],
        seen: dict[bytes, bytes],
        extra: list[tuple[bytes, bytes]],
        client: str,
        arrived: float,
    ) -> Outcome:
        head = scope["method"] == "HEAD"
        if route.buckets is not None:
            wait = route.buckets.take(client)
            if wait:
                retry = (b"retry-after", str(wait).encode())
                return Outcome(await send_error(send, 429, [*extra, retry], head=head))
        query: bytes = scope.get("query_string", b"")
        target = path + "?" + query.decode("latin-1") if query else path
        route.metrics.active += 1
        try:
            return await forward(
                route,
                scope,
                receive,
                send,
                target=target,
                headers=headers,
                seen=seen,
                extra=extra,
                arrived=arrived,
            )
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
        headers, seen, trace_id = request_headers(
            scope["headers"],
            client_ip=client,
            scheme=scope.get("scheme", "ws"),
            skip=WEBSOCKET_HANDSHAKE,
        )
        try:
            path = normalise(raw)
        except BadPath:
            await send({"type": "websocket.close", "code": 1008})
            return
        profile, _ = profile_for(self.follower.current, self.table, seen.get(b"cookie"))
        route = self.routes[id(profile.match("GET", match_key(path)))]
        query: bytes = scope.get("query_string", b"")
        url = route.origin_url + path + ("?" + query.decode("latin-1") if query else "")
        route.metrics.active += 1
        try:
            status = await forward_websocket(
                self.session, route, scope, receive, send,
                url=url, headers=headers, extra=route.edge_headers,
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


app = Edge()
