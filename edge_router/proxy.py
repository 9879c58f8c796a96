"""Forwarding one HTTP request to its origin with the worker's pool
(edge_router/origin_client.py).

Request bodies are read whole first, up to the behaviour's `max_body` and within the
listener's body deadlines, and sent with a Content-Length (the origins are WSGI apps,
which need one): the origin is not asked until the body is complete, so a slow
visitor never holds an origin's thread. Response bodies
stream back; small ones (Content-Length ≤ 64 KiB) are read first, so an origin that
breaks mid-body still gets the visitor a clean 502.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edge_router.asgi_types import Receive, Scope, Send
from edge_router.errors import send_error
from edge_router.headers import response_headers
from edge_router.limits import BodyTooLarge, TokenBuckets
from edge_router.listener import ListenerLimits
from edge_router.metrics import RouteMetrics
from edge_router.origin_client import OriginPool, OriginResponse
from edge_router.routes import Behaviour

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from edge_router.static import StaticSite
    from edge_router.tracing import EdgeTracing

SMALL = 64 * 1024
# An untraced request's call to the origin: no span.
NO_SPAN: contextlib.AbstractContextManager[Span | None] = contextlib.nullcontext()
# Sent with an answer after which the connection cannot go on (uvicorn closes it).
CLOSE = (b"connection", b"close")
PERSONAL_CACHE = [(b"cache-control", b"private, no-store")]
# 499: nginx's code for "the client went away first" (logs and metrics only).
CLIENT_GONE = 499


class ClientGone(Exception):
    """The visitor disconnected while the edge was reading its request."""


@dataclass
class Route:
    """A behaviour with what the edge needs at request time, built once."""

    behaviour: Behaviour
    origin_url: str
    # For a connection (pool wait included), for the origin's answer's headers once
    # the request is out, and for each wait for more of its body.
    timeout: float
    edge_headers: list[tuple[bytes, bytes]]
    metrics: RouteMetrics
    buckets: TokenBuckets | None
    # What the request's server span says served it (see edge_router/tracing.py).
    span_attributes: dict[str, str]
    # The behaviour's own Cache-Control, set on every answer it relays (or none).
    cache_headers: list[tuple[bytes, bytes]]
    body_deadlines: BodyDeadlines
    # A static origin's files, answered by the edge itself (edge_router/static.py).
    site: StaticSite | None = None

    @classmethod
    def build(
        cls,
        behaviour: Behaviour,
        profile: str,
        listener: ListenerLimits,
        site: StaticSite | None = None,
    ) -> Route:
        return cls(
            behaviour=behaviour,
            origin_url=behaviour.origin.url.rstrip("/"),
            timeout=behaviour.timeout,
            edge_headers=[
                (b"x-edge-route", behaviour.name.encode()),
                (b"x-edge-origin", behaviour.origin.name.encode()),
            ],
            metrics=RouteMetrics(behaviour.name, behaviour.origin.name),
            buckets=TokenBuckets(behaviour.rate) if behaviour.rate else None,
            span_attributes={
                "edge.mode": profile,
                "edge.route": behaviour.name,
                "edge.origin": behaviour.origin.name,
            },
            cache_headers=(
                [(b"cache-control", behaviour.cache_control.encode())]
                if behaviour.cache_control
                else []
            ),
            body_deadlines=BodyDeadlines(
                listener.body_timeout, listener.body_idle_timeout
            ),
            site=site,
        )


@dataclass
class Outcome:
    status: int
    sent: int = 0
    origin_seconds: float = 0.0


@dataclass(slots=True)
class Exchange:
    """One HTTP request through the edge: what answering it needs, read once."""

    scope: Scope
    receive: Receive
    send: Send
    method: str
    client: str
    # What goes on to the origin; and the visitor's headers by lower-case name.
    headers: list[tuple[str, str]]
    seen: dict[bytes, bytes]
    arrived: float
    trace_id: str
    span_id: str = ""


class BodyTooSlow(Exception):
    """The visitor's body did not arrive within the listener's deadlines."""


@dataclass(frozen=True)
class BodyDeadlines:
    total: float
    idle: float


async def read_body(receive: Receive, limit: int, deadlines: BodyDeadlines) -> bytes:
    """The whole body, up to `limit` bytes, before the origin hears of it: a slow
    visitor holds an edge coroutine, never an origin's thread. Each piece must come
    within `idle` seconds and the whole within `total` (else BodyTooSlow)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadlines.total
    chunks: list[bytes] = []
    size = 0
    more = True
    try:
        async with asyncio.timeout(None) as clock:
            while more:
                clock.reschedule(min(deadline, loop.time() + deadlines.idle))
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientGone
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge
                chunks.append(chunk)
                more = message.get("more_body", False)
    except TimeoutError:
        raise BodyTooSlow from None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def request_body(
    receive: Receive,
    seen: dict[bytes, bytes],
    limit: int,
    deadlines: BodyDeadlines,
) -> bytes | None:
    """The body to send on, or None. Raises BodyTooLarge, BodyTooSlow, ClientGone,
    ValueError (bad length)."""
    length = seen.get(b"content-length")
    if length is not None:
        if not length.isdigit():
            raise ValueError("Content-Length is not a number")
        size = int(length)
        if size > limit:
            raise BodyTooLarge
        if size == 0:
            return None
        return await read_body(receive, limit, deadlines)
    if b"transfer-encoding" in seen:
        return await read_body(receive, limit, deadlines)
    return None


async def take_body(
    route: Route, request: Exchange, extra: list[tuple[bytes, bytes]]
) -> bytes | Outcome | None:
    """The request's body (None: it has none), read whole within the behaviour's
    `max_body` and the listener's deadlines; or the refusal sent instead."""
    seen = request.seen
    if b"content-length" not in seen and b"transfer-encoding" not in seen:
        return None
    try:
        return await request_body(
            request.receive, seen, route.behaviour.max_body, route.body_deadlines
        )
    except BodyTooLarge:
        return await refuse(request, 413, extra)
    except BodyTooSlow:
        return await refuse(request, 408, [*extra, CLOSE])
    except ValueError:
        return await refuse(request, 400, extra)
    except ClientGone:
        return Outcome(CLIENT_GONE)


def trace_header(trace_id: str) -> list[tuple[bytes, bytes]]:
    """`X-Trace-Id` for an answer the edge makes itself (an origin's answer carries
    the origin's, which names the same trace)."""
    return [(b"x-trace-id", trace_id.encode())] if trace_id else []


async def refuse(
    request: Exchange, status: int, extra: list[tuple[bytes, bytes]]
) -> Outcome:
    """The edge's own error answer to the request."""
    headers = [*extra, *trace_header(request.trace_id)]
    head = request.method == "HEAD"
    return Outcome(await send_error(request.send, status, headers, head=head))


async def forward(
    pool: OriginPool,
    route: Route,
    request: Exchange,
    *,
    target: str,
    extra: list[tuple[bytes, bytes]],
    personal: bool = False,
    tracing: EdgeTracing | None = None,
) -> Outcome:
    """Send the request to the origin and its answer to the visitor; map failures.

    `personal`: the edge made this answer a visitor's own (it sets a newly drawn
    canary visitor id), so no cache may keep it, whatever the origin said.
    With `tracing` (a traced request), the call to the origin, up to its response
    headers, is a client span whose context the origin continues."""
    data = await take_body(route, request, extra)
    if isinstance(data, Outcome):
        return data
    asked = time.perf_counter()
    origin = route.behaviour.origin
    call = (
        NO_SPAN
        if tracing is None
        else tracing.client_span(
            request.method,
            route.origin_url + target,
            origin.host,
            origin.port,
            request.headers,
        )
    )
    try:
        with call as span:
            # The path is normalised and stays percent-encoded as it came.
            response = await pool.request(
                request.method, origin.host, origin.port, target, request.headers,
                data, timeout=route.timeout, add_host=b"host" not in request.seen,
            )  # fmt: skip
            if span is not None and tracing is not None:
                tracing.client_answered(span, response.status)
    except TimeoutError:
        return await refuse(request, 504, extra)
    except OSError:  # the origin refused, reset or closed the connection
        return await refuse(request, 502, extra)
    try:
        cache = PERSONAL_CACHE if personal else route.cache_headers
        return await _relay(response, request, extra, asked, cache)
    finally:
        response.release()


def _timing(arrived: float, origin_seconds: float) -> tuple[bytes, bytes]:
    total = (time.perf_counter() - arrived) * 1000
    return (
        b"server-timing",
        f"edge;dur={total:.3f}, origin;dur={origin_seconds * 1000:.3f}".encode(),
    )


async def _relay(
    response: OriginResponse,
    request: Exchange,
    extra: list[tuple[bytes, bytes]],
    asked: float,
    cache_headers: list[tuple[bytes, bytes]],
) -> Outcome:
    body: bytes | None = None
    length = response.content_length
    if length is not None and length <= SMALL:
        try:
            body = await response.read()
        except TimeoutError:
            return await refuse(request, 504, extra)
        except OSError:
            return await refuse(request, 502, extra)
    origin_seconds = time.perf_counter() - asked
    status = response.status
    headers = response_headers(
        response.raw_headers,
        [*extra, *cache_headers, _timing(request.arrived, origin_seconds)],
        replace_cache_control=bool(cache_headers),
    )
    send = request.send
    await send({"type": "http.response.start", "status": status, "headers": headers})
    if body is not None:
        await send({"type": "http.response.body", "body": body})
        return Outcome(status, len(body), origin_seconds)
    sent = 0
    try:
        while chunk := await response.next_chunk():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent += len(chunk)
    except OSError:  # TimeoutError is one
        # The status is out already: leave the response unfinished, so the server
        # drops the connection and the visitor sees a truncated body, not a clean one.
        response.close()
        return Outcome(status, sent, origin_seconds)
    await send({"type": "http.response.body", "body": b""})
    return Outcome(status, sent, origin_seconds)
