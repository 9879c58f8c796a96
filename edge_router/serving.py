"""uvicorn's HTTP protocol with the limits uvicorn lacks: a deadline for a request's
headers, and a cap on open connections per client address.

The Procfile runs the edge with `--http edge_router.serving:EdgeHttpProtocol`. The
limits are the route table's `[listener]`, set by the app at start-up
(`EdgeHttpProtocol.limits`), before uvicorn accepts a connection. Request bodies get
their deadlines in the app (edge_router/proxy.py), where they are read.

A websocket upgrade leaves this protocol: from then on the app's websocket limits
(`[websockets]`) count it, not these.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from edge_router.listener import ListenerLimits
from edge_router.metrics import CONNECTIONS_REFUSED


def _answer(status: str, body: bytes, *headers: bytes) -> bytes:
    return b"".join(
        [
            f"HTTP/1.1 {status}\r\n".encode(),
            b"content-type: text/plain; charset=utf-8\r\n",
            b"cache-control: no-store\r\n",
            *(header + b"\r\n" for header in headers),
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
    )


TIMED_OUT = _answer("408 Request Timeout", b"Request timeout\n")
TOO_MANY = _answer(
    "429 Too Many Requests", b"Too many connections\n", b"retry-after: 1"
)


class AnswerTransport:
    """What a request's answer is written to (uvicorn's cycle writes through it):
    the status line and headers wait for the body's first piece and leave in the
    same write. uvloop sends each `write` at once, so uvicorn's two writes (head,
    then body) were two system calls and two segments for every answer: on loopback
    each send also runs the receiver's side in the kernel, a few µs a request.

    A head held is never late: whatever writes next takes it along, and the next
    turn of the event loop sends it if nothing did (an answer streamed from an
    origin still slow to send its body). Informational answers (100 Continue) go at
    once. Order is kept: anything written goes after what is held."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.writelines((held, data))
        elif data.startswith(b"HTTP/1.1 ") and not data.startswith(b"HTTP/1.1 1"):
            self._held = data
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()


# How often a worker looks for requests whose headers are late: a deadline is kept
# to within this. One sweep a worker, not a timer a request: uvloop's call_later and
# cancel cost about 7 µs, a tenth of what the edge spends on a request.
SWEEP_SECONDS = 0.25


class EdgeHttpProtocol(HttpToolsProtocol):
    limits: ClassVar[ListenerLimits] = ListenerLimits()
    # Open connections per client address, in this worker.
    open_by_address: ClassVar[Counter[str]] = Counter()
    # Connections whose request headers are not all in yet: by when they must be.
    awaiting_headers: ClassVar[dict[EdgeHttpProtocol, float]] = {}
    sweeping: ClassVar[bool] = False

    _address: str | None = None
    _began = False
    _answers: AnswerTransport

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._answers = AnswerTransport(transport, self.loop)
        address = self.client[0] if self.client else "-"
        self._address = address
        self.open_by_address[address] += 1
        if self.open_by_address[address] > self.limits.max_connections_per_address:
            CONNECTIONS_REFUSED.labels("per_address").inc()
            transport.write(TOO_MANY)
            transport.close()
            return
        self._await_headers()
        if not EdgeHttpProtocol.sweeping:
            EdgeHttpProtocol.sweeping = True
            self.loop.call_later(SWEEP_SECONDS, _sweep, self.loop)

    def connection_lost(self, exc: Exception | None) -> None:
        self.awaiting_headers.pop(self, None)
        self._uncount()
        super().connection_lost(exc)

    def _uncount(self) -> None:
        address, self._address = self._address, None
        if address is not None:
            left = self.open_by_address[address] - 1
            if left > 0:
                self.open_by_address[address] = left
            else:
                del self.open_by_address[address]

    def _await_headers(self) -> None:
        self.awaiting_headers[self] = self.loop.time() + self.limits.header_timeout

    def headers_too_slow(self) -> None:
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request behind one still being answered: its deadline
            # runs once that answer is out.
            self._await_headers()
            return
        # A connection that never began a request is just closed (a browser's
        # pre-connect); one stuck inside its headers is told why.
        CONNECTIONS_REFUSED.labels("header_timeout").inc()
        if self._began:
            self.transport.write(TIMED_OUT)
        self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._began = True
        if self not in self.awaiting_headers:
            self._await_headers()

    def on_headers_complete(self) -> None:
        self.awaiting_headers.pop(self, None)
        self._began = False
        super().on_headers_complete()
        if self.cycle is not None:
            # The cycle uvicorn just made (or the last one, after an upgrade).
            self.cycle.transport = self._answers  # type: ignore[assignment]

    def handle_websocket_upgrade(self) -> None:
        self.awaiting_headers.pop(self, None)
        self._uncount()
        super().handle_websocket_upgrade()


def _sweep(loop: asyncio.AbstractEventLoop) -> None:
    """Cut the connections whose headers are late; then again in SWEEP_SECONDS."""
    now = loop.time()
    late = [p for p, due in EdgeHttpProtocol.awaiting_headers.items() if due <= now]
    for protocol in late:
        del EdgeHttpProtocol.awaiting_headers[protocol]
        protocol.headers_too_slow()
    loop.call_later(SWEEP_SECONDS, _sweep, loop)
