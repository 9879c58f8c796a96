"""The nginx engine's control plane: nginx answers on the edge's port, this process
drives it (`EDGE_ENGINE=nginx`, started by `python -m edge_router.serve`).

It renders nginx's configuration from the route table and the mode in Redis
(edge_router/nginx_conf.py), checks it with `nginx -t` and reloads nginx gracefully
(SIGHUP to its master) on every change: the mode or canary percent (followed as the
Python edge's workers follow it, published and polled), the table file, or Redis
coming and going (the health answer says so). A change is served within a second;
requests in flight finish on the workers that took them.

nginx writes the JSON access log straight to this process's stdout, and short
`route origin status ms` lines into a pipe this process reads to count the same
metrics as the Python edge (a counter update per distinct line of each 64 KiB batch,
not per request); it reads `stub_status` for connection gauges at each scrape, and
answers the admin API (`/_edge/mode`, `/_edge/routes`, `/_edge/metrics`) on the
Python edge's admin listener (edge_router/admin_listener.py,
EDGE_ADMIN_HOST:EDGE_ADMIN_PORT, 127.0.0.1:8010); nginx answers only the health
check under /_edge/ on the public port. What nginx cannot do: start a trace (it logs
and passes on the visitor's `traceparent`; a trace starts at the origin).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import tempfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import redis.asyncio as aioredis

from edge_router import admin, metrics
from edge_router.admin_listener import AdminApp, AdminListener
from edge_router.asgi_types import Receive, Scope, Send
from edge_router.config import EdgeConfig, config_from_env
from edge_router.modes import Mode, ModeFollower, redis_client
from edge_router.nginx_conf import EngineParts, nginx_config
from edge_router.routes import RouteTable, RouteTableError, load_table

if TYPE_CHECKING:
    from prometheus_client import Counter as MetricCounter
    from prometheus_client import Histogram

logger = logging.getLogger("edge_router.engine")
# How often the table file and Redis's state are looked at: an idle control plane
# wakes twice a second for them (and for the mode's poll), nothing more.
WATCH_SECONDS = 0.5
STOP_GRACE_SECONDS = 10.0


def nginx_binary() -> str:
    for candidate in ("/usr/sbin/nginx", "/usr/local/sbin/nginx"):
        if Path(candidate).exists():
            return candidate
    return "nginx"


class _EngineAdminApp(AdminApp):
    """The admin listener's app, reading nginx's connection counters (stub_status)
    before it answers a metrics scrape."""

    def __init__(self, engine: NginxEngine) -> None:
        super().__init__(engine)
        self.engine = engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if admin.endpoint_path(scope.get("path", "")) == "/_edge/metrics":
            await self.engine.read_status()
        await super().__call__(scope, receive, send)


class NginxEngine:
    engine = "nginx"
    config: EdgeConfig
    table: RouteTable
    follower: ModeFollower
    redis: aioredis.Redis

    def __init__(self, *, listen: str, workers: int) -> None:
        self.listen = listen
        self.workers = workers
        self.prefix = Path(tempfile.mkdtemp(prefix="edge-nginx-"))
        # nginx's workers (another user when the master is root) read under it.
        self.prefix.chmod(0o755)
        self.conf = self.prefix / "nginx.conf"
        self.status_socket = self.prefix / "status.sock"
        self.binary = nginx_binary()
        self.nginx: asyncio.subprocess.Process | None = None
        self._changed = asyncio.Event()
        self._stop = asyncio.Event()
        self._rendered = ""
        # The table whose configuration `nginx -t` last accepted.
        self._checked_table: RouteTable | None = None
        # nginx writes its counting log into this pipe, by the write end's number.
        self._counts_read, self._counts_write = os.pipe()
        self._table_mtime = 0.0
        self._counters: dict[tuple[str, str, str], MetricCounter] = {}
        self._latencies: dict[tuple[str, str], Histogram] = {}

    # --- configuration ---------------------------------------------------------

    def render(self) -> str:
        parts = EngineParts(
            mode=self.follower.current,
            workers=self.workers,
            status_socket=str(self.status_socket),
            metrics_log=f"/proc/self/fd/{self._counts_write}",
            access_log=self.config.access_log,
            redis_ok=self.follower.redis_ok,
        )
        return nginx_config(self.table, "legacy", listen=self.listen, engine=parts)

    async def _check(self, path: Path) -> str:
        """ "" when `nginx -t` accepts the file, else what it said."""
        check = await asyncio.create_subprocess_exec(
            self.binary, "-q", "-t", "-p", str(self.prefix), "-c", str(path),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            pass_fds=(self._counts_write,),
        )  # fmt: skip
        _, err = await check.communicate()
        return "" if check.returncode == 0 else err.decode(errors="replace")

    async def _apply(self) -> None:
        """Render; when it differs, check it and have nginx load it.

        `nginx -t` checks every configuration of a new table. A change of mode or
        canary percent on a table already checked is not checked again (a process
        start that took a few hundred milliseconds of a busy machine's second): it
        differs only in names and numbers, and nginx's master refuses a reload it
        cannot load anyway, keeping the last configuration."""
        text = self.render()
        if text == self._rendered:
            return
        candidate = self.prefix / "nginx.conf.next"
        candidate.write_text(text)
        checked = self._checked_table is self.table
        problem = "" if checked else await self._check(candidate)
        if not problem:
            self._checked_table = self.table
        if problem:
            metrics.NGINX_RELOADS.labels("refused").inc()
            logger.error("nginx -t refused the new configuration, kept the last:\n%s",
                         problem)  # fmt: skip
            return
        candidate.replace(self.conf)
        self._rendered = text
        if self.nginx is not None and self.nginx.returncode is None:
            self.nginx.send_signal(signal.SIGHUP)
            metrics.NGINX_RELOADS.labels("reloaded").inc()
            logger.info("nginx reloading: mode %s (version %s)",
                        self.follower.current.describe(),
                        self.follower.current.version)  # fmt: skip

    async def _reloads(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            await self._apply()

    def _table_changed(self) -> bool:
        try:
            mtime = self.config.routes_file.stat().st_mtime
        except OSError:
            return False
        if mtime == self._table_mtime:
            return False
        self._table_mtime = mtime
        try:
            self.table = load_table(self.config.routes_file, env=self.config.env)
        except RouteTableError as error:
            logger.error("route table not taken, the last one stays: %s", error)
            return False
        return True

    async def _watch(self) -> None:
        """The table file, and Redis's state (said by the health answer)."""
        redis_ok = self.follower.redis_ok
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            if self._table_changed() or self.follower.redis_ok != redis_ok:
                redis_ok = self.follower.redis_ok
                self._changed.set()

    def _mode_changed(self, previous: Mode, current: Mode) -> None:
        metrics.MODE_CHANGES.labels(current.mode).inc()
        self._changed.set()

    # --- the access log and counters -------------------------------------------

    def _count(self, lines: Counter[bytes]) -> None:
        """Lines `route origin status seconds` (nginx's `$request_time`, to the
        millisecond), counted alike: a counter or histogram update per distinct
        line, not per request."""
        for line, times in lines.items():
            try:
                route_b, origin_b, status_b, taken = line.split()
                seconds = float(taken)
            except ValueError:
                continue
            route, origin = route_b.decode(), origin_b.decode()
            if route == "edge":
                continue  # the edge's own endpoints, uncounted as in the Python edge
            key = (route, origin, status_b.decode())
            counter = self._counters.get(key)
            if counter is None:
                counter = self._counters[key] = metrics.REQUESTS.labels(*key)
            counter.inc(times)
            latency = self._latencies.get((route, origin))
            if latency is None:
                latency = metrics.LATENCY.labels(route, origin)
                self._latencies[(route, origin)] = latency
            metrics.latency_observe_many(latency, seconds, times)

    async def _read_counts(self, fd: int) -> None:
        """nginx's short log lines, from the pipe it writes in 64 KiB buffers."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1024 * 1024)
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", 0)
        )
        rest = b""
        while chunk := await reader.read(256 * 1024):
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            self._count(Counter(lines))

    async def read_status(self) -> None:
        """stub_status into the connection gauges: at each metrics scrape, so an
        idle edge spends nothing on it."""
        connector = aiohttp.UnixConnector(path=str(self.status_socket))
        try:
            async with (
                aiohttp.ClientSession(connector=connector) as session,
                session.get(
                    "http://nginx/", timeout=aiohttp.ClientTimeout(2)
                ) as answer,
            ):
                _status_gauges(await answer.text())
        except (aiohttp.ClientError, OSError):
            return

    # --- running -------------------------------------------------------------------

    async def _start_nginx(self) -> asyncio.subprocess.Process:
        self._rendered = self.render()
        self.conf.write_text(self._rendered)
        problem = await self._check(self.conf)
        self._checked_table = self.table
        if problem:
            raise RuntimeError(f"nginx -t refused the configuration:\n{problem}")
        return await asyncio.create_subprocess_exec(
            self.binary, "-p", str(self.prefix), "-c", str(self.conf),
            "-g", "daemon off;", pass_fds=(self._counts_write,),
        )  # fmt: skip

    async def _serve_admin(self) -> AdminListener:
        """The admin listener, answering before nginx does (the ready check is
        nginx's): the Python edge's, with the metrics scrape reading stub_status."""
        listener = AdminListener(
            self, self.config.admin_host, self.config.admin_port, _EngineAdminApp(self)
        )
        await listener.start()
        return listener

    async def run(self) -> int:
        self.config = config_from_env()
        self.table = load_table(self.config.routes_file, env=self.config.env)
        self._table_mtime = self.config.routes_file.stat().st_mtime
        self.redis = redis_client(self.config.redis_url)
        self.follower = ModeFollower(
            redis_client(self.config.redis_url),
            self.config.mode_key,
            self.config.default_mode,
            self.config.poll_interval,
            on_change=self._mode_changed,
            listener=redis_client(self.config.redis_url, read_timeout=None),
            cache=self.config.mode_cache,
        )
        metrics.forget_dead_workers()
        await self.follower.start()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stop.set)
        admin_listener = await self._serve_admin()
        self.nginx = await self._start_nginx()
        tasks = [
            asyncio.create_task(self._reloads()),
            asyncio.create_task(self._watch()),
            asyncio.create_task(self._read_counts(self._counts_read)),
        ]
        logger.info(
            "edge (nginx engine) on %s: %s workers, mode %s, admin %s:%s, "
            "config %s", self.listen, self.workers,
            self.follower.current.describe(), self.config.admin_host,
            self.config.admin_port, self.conf,
        )  # fmt: skip
        exited = asyncio.create_task(self.nginx.wait())
        stopping = asyncio.create_task(self._stop.wait())
        await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
        code = 0
        if exited.done():
            logger.error("nginx exited (%s): the edge stops", self.nginx.returncode)
            code = 1
        else:
            await self._stop_nginx(exited)
        await admin_listener.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.follower.stop()
        await self.redis.aclose()
        metrics.worker_exit()
        return code

    async def _stop_nginx(self, exited: asyncio.Task[int]) -> None:
        """Graceful (SIGQUIT: in-flight requests finish), then forced."""
        assert self.nginx is not None
        self.nginx.send_signal(signal.SIGQUIT)
        try:
            await asyncio.wait_for(asyncio.shield(exited), STOP_GRACE_SECONDS)
        except TimeoutError:
            self.nginx.kill()
            await exited


def _status_gauges(text: str) -> None:
    """stub_status's text: 'Active connections: N' ... 'Reading: a Writing: b
    Waiting: c'."""
    words = text.split()
    with contextlib.suppress(ValueError, IndexError):
        metrics.NGINX_CONNECTIONS.labels("active").set(int(words[2]))
        for state in ("Reading", "Writing", "Waiting"):
            value = int(words[words.index(state + ":") + 1])
            metrics.NGINX_CONNECTIONS.labels(state.lower()).set(value)


def run(*, listen: str, workers: int) -> int:
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=os.environ.get("LOG_LEVEL", "INFO").upper(),
            format="%(levelname)s %(name)s: %(message)s",
        )
    engine = NginxEngine(listen=listen, workers=workers)
    try:
        return asyncio.run(engine.run())
    finally:
        shutil.rmtree(engine.prefix, ignore_errors=True)
