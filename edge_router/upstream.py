"""A lean HTTP/1.1 client to the origins: pooled keep-alive connections on asyncio
protocols, responses parsed by httptools (uvicorn's own parser).

The edge sends plain requests to origins it knows, so it needs little of a general
client: no redirects, no cookies, no decompression, no proxies, no TLS. What it does
need is low cost per request, since every page pays it; aiohttp's client spent most
of the edge's time per request (see bench/edge.py). Websockets stay with aiohttp.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import cast

import httptools

# Response bodies buffered before the edge stops reading from the origin.
HIGH_WATER = 1024 * 1024


class UpstreamError(Exception):
    """The origin refused, reset or broke the connection (a 502)."""


class UpstreamTimeout(Exception):
    """The origin did not answer in time (a 504)."""


class StaleConnection(UpstreamError):
    """A kept-alive connection closed before any byte of the answer: safe to retry."""


class Response:
    __slots__ = ("_conn", "content_length", "headers", "status")

    def __init__(
        self, conn: Connection, status: int, headers: list[tuple[bytes, bytes]]
    ) -> None:
        self._conn = conn
        self.status = status
        self.headers = headers
        self.content_length: int | None = None
        for name, value in headers:
            if name.lower() == b"content-length" and value.isdigit():
                self.content_length = int(value)

    def read_now(self) -> bytes | None:
        return self._conn.read_now()

    def iter_body(self) -> AsyncGenerator[bytes, None]:
        """The body as it comes; the caller closes it, then releases the connection."""
        return self._conn.body_chunks()


class Connection(asyncio.Protocol):
    """One kept-alive connection to an origin, one request at a time."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.reused = False
        self.idle_since = 0.0
        self.closed = False
        self._headers: list[tuple[bytes, bytes]] = []
        self._head: asyncio.Future[Response] | None = None
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._done = False
        self._waiter: asyncio.Future[None] | None = None
        self._error: Exception | None = None
        self._got_bytes = False
        self._keep_alive = True
        self._paused = False
        self._drain: asyncio.Future[None] | None = None
        self._read_timeout = 30.0
        self._no_body = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(UpstreamError(f"unreadable answer: {error}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self._done:
            if self._got_bytes or not self.reused:
                self._fail(UpstreamError("the origin closed the connection"))
            else:
                self._fail(StaleConnection("a kept-alive connection was closed"))
        if self._drain is not None and not self._drain.done():
            self._drain.set_exception(UpstreamError("connection lost while sending"))

    def pause_writing(self) -> None:
        self._drain = self.loop.create_future()

    def resume_writing(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self._drain = None

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        self._keep_alive = self.parser.should_keep_alive()
        if self._no_body:
            # An answer to HEAD has no body whatever its Content-Length says; the
            # parser cannot be told, so the connection is not kept after it.
            self._done = True
            self._keep_alive = False
        if self._head is not None and not self._head.done():
            self._head.set_result(Response(self, status, self._headers))

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._paused and self.transport:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self._done = True
        self._wake()

    # the edge's side
    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self, error: Exception) -> None:
        self._error = error
        if self._head is not None and not self._head.done():
            self._head.set_exception(error)
        self._wake()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def write(self, data: bytes) -> None:
        if self.closed or self.transport is None:
            raise UpstreamError("connection closed")
        self.transport.write(data)
        if self._drain is not None:
            await self._drain

    async def send(
        self,
        head: bytes,
        body: bytes | AsyncIterator[bytes] | None,
        timeout: float,
        *,
        no_body: bool = False,
    ) -> Response:
        self._read_timeout = timeout
        self._no_body = no_body
        self._head = self.loop.create_future()
        if isinstance(body, bytes):
            await self.write(head + body)
        else:
            await self.write(head)
            if body is not None:
                async for chunk in body:
                    await self.write(chunk)
        # A timer, not asyncio.wait_for: no extra future and callbacks per request.
        timer = self.loop.call_later(timeout, self._time_out)
        try:
            return await self._head
        finally:
            timer.cancel()

    def _time_out(self) -> None:
        self._fail(UpstreamTimeout())
        self.close()

    def read_now(self) -> bytes | None:
        """The whole body when it has all arrived already (the common small case)."""
        if not self._done:
            return None
        body = b"".join(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        return body

    async def body_chunks(self) -> AsyncGenerator[bytes, None]:
        while True:
            while self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._paused and self._buffered <= HIGH_WATER // 2:
                    self._paused = False
                    if self.transport is not None:
                        self.transport.resume_reading()
                yield chunk
            if self._done:
                return
            if self._error is not None:
                raise self._error
            self._waiter = self.loop.create_future()
            timer = self.loop.call_later(self._read_timeout, self._time_out)
            try:
                await self._waiter
            finally:
                timer.cancel()
                self._waiter = None

    def reusable(self) -> bool:
        return (
            self._done and self._keep_alive and not self.closed and self._error is None
        )

    def reset(self) -> None:
        self._headers = []
        self._head = None
        self._chunks.clear()
        self._buffered = 0
        self._done = False
        self._error = None
        self._got_bytes = False
        self._no_body = False
        self.reused = True
        self.idle_since = time.monotonic()


class Pool:
    """Kept-alive connections to one origin (last in, first out)."""

    def __init__(self, host: str, port: int, *, keepalive: float, limit: int) -> None:
        self.host = host
        self.port = port
        self.keepalive = keepalive
        self.limit = limit
        self._idle: list[Connection] = []

    async def acquire(self, timeout: float, *, fresh: bool = False) -> Connection:
        now = time.monotonic()
        while self._idle and not fresh:
            conn = self._idle.pop()
            if not conn.closed and now - conn.idle_since < self.keepalive:
                return conn
            conn.close()
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(Connection, self.host, self.port),
                timeout,
            )
        except TimeoutError:
            raise UpstreamTimeout from None
        except OSError as error:
            raise UpstreamError(f"cannot connect: {error}") from None
        return conn

    def release(self, conn: Connection) -> None:
        if conn.reusable() and len(self._idle) < self.limit:
            conn.reset()
            self._idle.append(conn)
        else:
            conn.close()

    def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()


def request_head(
    method: str, target: str, headers: list[tuple[bytes, bytes]], length: int | None
) -> bytes:
    """The request line and headers; Content-Length set when a body has one."""
    lines = [f"{method} {target} HTTP/1.1".encode("latin-1")]
    for name, value in headers:
        if name != b"content-length":
            lines.append(name + b": " + value)
    if length is not None:
        lines.append(b"content-length: %d" % length)
    lines.append(b"\r\n")
    return b"\r\n".join(lines)
