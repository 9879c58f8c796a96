"""The edge's HTTP/1.1 client to its origins: one keep-alive pool per worker.

Chosen over aiohttp's client by measurement (docs/decisions/0010-edge-origin-client.md):
a proxy needs a small part of what a browser-like client does, and aiohttp's spent
a quarter of an edge worker's CPU under load. Responses are parsed by httptools
(edge_router/origin_connection.py). What it does:

- connections kept per origin (host, port): at most `per_origin` open to one origin,
  so that one stalled origin cannot take every connection from the others, and
  `connections` in all; a request waits for one within its behaviour's timeout;
- idle connections closed after `keepalive` seconds, below the origins' own
  keep-alive (gunicorn: 2 s), and dropped as soon as an origin closes one;
- a request that meets a kept-alive connection the origin closed before answering is
  sent once more on a new connection if it is idempotent (GET, HEAD, OPTIONS, PUT,
  DELETE, TRACE: RFC 9110 9.2.2), never a POST or PATCH (ConnectionError: a 502);
- the behaviour's timeout bounds the wait for a connection, for the answer's headers
  once the request is out, and each wait for more of its body (TimeoutError: 504);
  kept by one sweep of the pool every SWEEP_SECONDS, not a timer a request;
- the request is the visitor's headers as the edge made them, nothing of the
  client's own but `Content-Length` (a body is always whole) and `Host` if the visitor
  sent none; head and body go out in one write.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from edge_router.origin_connection import OriginClosed, OriginConnection

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
# Methods whose request has a meaning for content: sent with a length even if empty.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Headers the client writes itself, or drops: the body is whole when sent (its
# length is the client's to say) and the origin is never asked to say 100 Continue.
_OWN = frozenset({"content-length", "expect"})
# Deadlines are kept to within this.
SWEEP_SECONDS = 0.05


@dataclass(eq=False)
class _Origin:
    host: str
    port: int
    idle: list[OriginConnection] = field(default_factory=list)
    busy: set[OriginConnection] = field(default_factory=set)
    # Connections open, opening or promised to a waiter.
    count: int = 0
    waiters: list[asyncio.Future[OriginConnection | None]] = field(default_factory=list)


class OriginResponse:
    """An origin's answer: status and headers read, the body still to come."""

    __slots__ = (
        "_connection", "_pool", "_released", "content_length", "raw_headers", "status",
    )  # fmt: skip

    def __init__(self, pool: OriginPool, connection: OriginConnection) -> None:
        self._pool = pool
        self._connection = connection
        self._released = False
        # Kept here: the connection reads the next answer once given back.
        self.status = connection.status
        self.raw_headers = connection.raw_headers
        self.content_length = connection.content_length

    async def read(self) -> bytes:
        """The whole body; the connection goes back to the pool at once."""
        connection = self._connection
        while not connection.complete:
            await connection.wait()
        body = connection.take()
        self.release()
        return body

    async def next_chunk(self) -> bytes:
        """More of the body as it comes; b"" at its end."""
        connection = self._connection
        while True:
            data = connection.take()
            if data or connection.complete:
                return data
            await connection.wait()

    def release(self) -> None:
        """Done with it: the connection goes back to the pool, if it can be reused."""
        if not self._released:
            self._released = True
            self._pool.give_back(self._connection)

    def close(self) -> None:
        self._connection.close()
        self.release()


class OriginPool:
    """One per worker; made inside the running loop (lifespan start-up)."""

    def __init__(self, *, connections: int, per_origin: int, keepalive: float):
        self.limit = connections
        self.per_origin = per_origin
        self.keepalive = keepalive
        self.loop = asyncio.get_running_loop()
        self._origins: dict[tuple[str, int], _Origin] = {}
        self._count = 0
        # Requests waiting for a connection, to any origin.
        self._waiting = 0
        self._sweeping = False
        self._closing = False

    async def request(
        self,
        method: str,
        host: str,
        port: int,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes | None,
        *,
        timeout: float,
        add_host: bool = False,
    ) -> OriginResponse:
        """Send the request; its answer once the status and headers are in.
        Raises TimeoutError, ConnectionError or another OSError."""
        head = _request_head(method, target, headers, body, host, port, add_host)
        origin = self._origins.get((host, port))
        if origin is None:
            origin = self._origins[host, port] = _Origin(host, port)
        is_head = method == "HEAD"
        connection, reused = await self._acquire(origin, timeout, fresh=False)
        try:
            try:
                return await self._exchange(connection, head, body, is_head, timeout)
            except OriginClosed:
                if not reused or method not in IDEMPOTENT:
                    raise
            # The origin closed a kept-alive connection as the request went out.
            connection, _ = await self._acquire(origin, timeout, fresh=True)
            return await self._exchange(connection, head, body, is_head, timeout)
        except BaseException:
            connection.close()
            self.give_back(connection)
            raise

    async def _exchange(
        self,
        connection: OriginConnection,
        head: bytes,
        body: bytes | None,
        is_head: bool,
        timeout: float,
    ) -> OriginResponse:
        connection.timeout = timeout
        connection.send(head, body, head=is_head)
        await connection.headers()
        return OriginResponse(self, connection)

    async def _acquire(
        self, origin: _Origin, timeout: float, *, fresh: bool
    ) -> tuple[OriginConnection, bool]:
        """A connection to the origin, busy; and whether it was kept alive."""
        if not fresh:
            idle = origin.idle
            fresh_since = self.loop.time() - self.keepalive
            while idle:
                connection = idle.pop()
                if connection.idle_since > fresh_since and connection.is_open():
                    origin.busy.add(connection)
                    return connection, True
                connection.close()
        async with asyncio.timeout(timeout):
            if origin.count < self.per_origin and self._count < self.limit:
                origin.count += 1
                self._count += 1
            else:
                if origin.count < self.per_origin:
                    # The pool is full, with other origins' connections: one of
                    # theirs that is idle makes room (its slot comes to a waiter).
                    self._close_an_idle()
                given = await self._wait(origin)
                if given is not None:
                    origin.busy.add(given)
                    return given, True
            try:
                connection = await self._open(origin)
            except BaseException:
                self._slot_freed(origin)
                raise
        origin.busy.add(connection)
        return connection, False

    async def _wait(self, origin: _Origin) -> OriginConnection | None:
        """Until a connection is handed over, or a slot to open one (None)."""
        waiter: asyncio.Future[OriginConnection | None] = self.loop.create_future()
        origin.waiters.append(waiter)
        self._waiting += 1
        try:
            return await waiter
        except asyncio.CancelledError:
            with contextlib.suppress(ValueError):
                origin.waiters.remove(waiter)
            if waiter.done() and not waiter.cancelled():
                # Given just as the wait ended: pass it on.
                given = waiter.result()
                if given is None:
                    self._slot_freed(origin)
                else:
                    self.give_back(given)
            raise
        finally:
            self._waiting -= 1

    async def _open(self, origin: _Origin) -> OriginConnection:
        _, connection = await self.loop.create_connection(
            lambda: OriginConnection(self.loop, origin, self._lost),
            origin.host,
            origin.port,
        )
        if not self._sweeping:
            self._sweeping = True
            self.loop.call_later(SWEEP_SECONDS, self._sweep)
        return connection

    def give_back(self, connection: OriginConnection) -> None:
        """A request is done with `connection`: keep it, hand it on, or close it."""
        origin = _origin_of(connection)
        origin.busy.discard(connection)
        if not connection.reusable() or self._closing:
            connection.close()  # its slot is freed when it is lost
            return
        while origin.waiters:
            waiter = origin.waiters.pop(0)
            if not waiter.done():
                origin.busy.add(connection)
                waiter.set_result(connection)
                return
        if self._waiting and self._count >= self.limit:
            # Another origin's request waits for room in the pool: this one's
            # connection makes it (its slot goes to that request when it is lost).
            connection.close()
            return
        connection.idle_since = self.loop.time()
        origin.idle.append(connection)

    def _lost(self, connection: OriginConnection) -> None:
        origin = _origin_of(connection)
        origin.busy.discard(connection)
        with contextlib.suppress(ValueError):
            origin.idle.remove(connection)
        self._slot_freed(origin)

    def _slot_freed(self, origin: _Origin) -> None:
        """A connection's slot is free: to a waiter of this origin, of another one
        the pool's limit kept waiting, else counted down."""
        for candidate in (origin, *self._origins.values()):
            if candidate is not origin and candidate.count >= self.per_origin:
                continue
            while candidate.waiters:
                waiter = candidate.waiters.pop(0)
                if not waiter.done():
                    if candidate is not origin:
                        origin.count -= 1
                        candidate.count += 1
                    waiter.set_result(None)
                    return
        origin.count -= 1
        self._count -= 1

    def _close_an_idle(self) -> None:
        for origin in self._origins.values():
            if origin.idle:
                origin.idle.pop(0).close()
                return

    def _sweep(self) -> None:
        """Fail the waits past their deadline; close the connections idle too long."""
        now = self.loop.time()
        for origin in self._origins.values():
            for connection in [c for c in origin.busy if c.waiter is not None]:
                if connection.deadline <= now:
                    connection.time_out()
            stale = now - self.keepalive
            for connection in [c for c in origin.idle if c.idle_since <= stale]:
                connection.close()
        if self._count > 0:
            self.loop.call_later(SWEEP_SECONDS, self._sweep)
        else:
            self._sweeping = False

    async def close(self) -> None:
        self._closing = True
        for origin in self._origins.values():
            for connection in [*origin.idle, *origin.busy]:
                connection.close()
        await asyncio.sleep(0)


def _origin_of(connection: OriginConnection) -> _Origin:
    origin = connection.origin
    assert isinstance(origin, _Origin)
    return origin


def _request_head(
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes | None,
    host: str,
    port: int,
    add_host: bool,
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1"]
    lines += [f"{n}: {v}" for n, v in headers if n not in _OWN]
    if add_host:
        lines.append(f"host: {host}:{port}")
    if body is not None:
        lines.append(f"content-length: {len(body)}")
    elif method in _BODY_METHODS:
        lines.append("content-length: 0")
    lines.append("\r\n")
    if target.isascii():
        return "\r\n".join(lines).encode()
    # The target's bytes as the visitor sent them (it was read as Latin-1); header
    # values as aiohttp wrote them, UTF-8 (edge_router/headers.py: header_text).
    return lines[0].encode("latin-1") + "\r\n".join(["", *lines[1:]]).encode()
