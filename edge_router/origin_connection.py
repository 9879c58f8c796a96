"""One kept-alive HTTP/1.1 connection to an origin, and the answer it is reading.

The response is parsed by httptools (llhttp, the parser uvicorn's server side uses);
this module only keeps the answer's state between the parser's callbacks and the
coroutine reading it. The pool around it is edge_router/origin_client.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httptools

# aiohttp's default, kept on purpose: 16, 64, 128 and 256 KiB moved a 200 MiB
# download through the edge at the same rate within the noise, and this bounds what
# one slow visitor's response keeps buffered: past it, the origin's socket is paused.
READ_BUFSIZE = 64 * 1024


class OriginClosed(ConnectionError):
    """The origin closed the connection before a byte of its answer: on a kept-alive
    connection, the request may never have reached it."""


class OriginConnection(asyncio.Protocol):
    """A connection and the one answer it is reading at a time (no pipelining)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        origin: object,
        lost: Callable[[OriginConnection], None],
    ) -> None:
        self.loop = loop
        # The pool's record of the origin it belongs to.
        self.origin = origin
        self._lost = lost
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        # Set by the pool: how long each wait for the origin's bytes may last, and
        # when the one under way ends (checked by the pool's sweep).
        self.timeout = 0.0
        self.deadline = 0.0
        self.waiter: asyncio.Future[None] | None = None
        self._begin(head=False)

    def _begin(self, *, head: bool) -> None:
        self.head = head
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.content_length: int | None = None
        self.chunked = False
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.got_bytes = False
        self.error: Exception | None = None
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.paused = False

    def send(self, data: bytes, body: bytes | None, *, head: bool) -> None:
        """Write one request (its body, if any, in the same system call)."""
        transport = self.transport
        if transport is None or not self.is_open():
            raise OriginClosed("the origin closed the connection")
        self._begin(head=head)
        if body is None:
            transport.write(data)
        elif len(body) < 16 * 1024:
            transport.write(data + body)
        else:
            transport.writelines((data, body))

    # --- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.headers_done and not self.complete and self._ends_at_close():
            self.complete = True
            self._wake()
        elif not self.complete:
            self._fail(
                ConnectionError("the origin closed mid-answer")
                if self.got_bytes
                else OriginClosed("the origin closed the connection")
            )
        self._lost(self)

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(ConnectionError(f"unreadable answer from the origin: {error}"))
            self.close()

    def pause_writing(self) -> None:  # the request body waits in the transport
        pass

    def resume_writing(self) -> None:
        pass

    # --- httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self.raw_headers.append((name, value))
        size = len(name)
        if size == 14 and name.lower() == b"content-length":
            self.content_length = int(value) if value.isdigit() else None
        elif size == 17 and name.lower() == b"transfer-encoding":
            self.chunked = True

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            # An interim answer (100 Continue, 103 Early Hints): the real one follows.
            self.raw_headers = []
            self.content_length = None
            self.chunked = False
            return
        self.status = status
        self.headers_done = True
        if self.head:
            # A HEAD's answer has no body whatever its length says; llhttp cannot be
            # told, so this parser is done and the next answer gets a new one.
            self.keep_alive = self.parser.should_keep_alive()
            self.parser = httptools.HttpResponseParser(self)
            self.complete = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > READ_BUFSIZE and not self.paused and self.transport:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if not self.headers_done:  # the end of an interim answer
            return
        if not self.complete:
            self.keep_alive = self.parser.should_keep_alive()
            self.complete = True
        self._wake()

    # --- for the reader

    def _ends_at_close(self) -> bool:
        return self.content_length is None and not self.chunked

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _fail(self, error: Exception) -> None:
        if self.error is None:
            self.error = error
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_exception(error)

    def time_out(self) -> None:
        """The pool's sweep found the wait under way past its deadline."""
        self._fail(TimeoutError("the origin did not answer in time"))
        self.close()

    async def wait(self) -> None:
        """Until the parser says more (raises the connection's error)."""
        if self.error is not None:
            raise self.error
        waiter = self.waiter = self.loop.create_future()
        self.deadline = self.loop.time() + self.timeout
        await waiter

    async def headers(self) -> None:
        while not self.headers_done:
            await self.wait()

    def take(self) -> bytes:
        """What is buffered of the body (b"" if nothing)."""
        chunks = self.chunks
        if not chunks:
            return b""
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self.chunks = []
        self.buffered = 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return data

    def is_open(self) -> bool:
        transport = self.transport
        return not self.closed and transport is not None and not transport.is_closing()

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and self.is_open()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
