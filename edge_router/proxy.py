"""Forwarding one HTTP request to its origin over the worker's pooled connections.

Request bodies with a Content-Length stream to the origin, counted against the
behaviour's `max_body`; chunked bodies are read up to that limit first and sent with
a Content-Length (the origins are WSGI apps, which need one). Response bodies
stream back; small ones (Content-Length ≤ 64 KiB) are read first, so an origin that
breaks mid-body still gets the visitor a clean 502.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

from edge_router.asgi_types import Receive, Scope, Send
from edge_router.errors import send_error
from edge_router.headers import response_headers
from edge_router.limits import BodyTooLarge, TokenBuckets
from edge_router.metrics import RouteMetrics
from edge_router.routes import Behaviour
from edge_router.upstream import (
    Connection,
    Pool,
    Response,
    StaleConnection,
    UpstreamError,
    UpstreamTimeout,
    request_head,
)

SMALL = 64 * 1024
CHUNK = 64 * 1024
# Safe to send again when a kept-alive connection turns out to be closed.
RETRYABLE = frozenset({"GET", "HEAD", "OPTIONS"})
# 499: nginx's code for "the client went away first" (logs and metrics only).
CLIENT_GONE = 499


class ClientGone(Exception):
    """The visitor disconnected while the edge was reading its request."""


@dataclass
class Route:
    """A behaviour with what the edge needs at request time, built once."""

    behaviour: Behaviour
    origin_url: str
    pool: Pool
    host_header: str
    edge_headers: list[tuple[bytes, bytes]]
    metrics: RouteMetrics
    buckets: TokenBuckets | None

    @classmethod
    def build(cls, behaviour: Behaviour, pool: Pool) -> Route:
        return cls(
            behaviour=behaviour,
            origin_url=behaviour.origin.url,
            pool=pool,
            host_header=f"{behaviour.origin.host}:{behaviour.origin.port}",
            edge_headers=[
                (b"x-edge-route", behaviour.name.encode()),
                (b"x-edge-origin", behaviour.origin.name.encode()),
            ],
            metrics=RouteMetrics(behaviour.name, behaviour.origin.name),
            buckets=TokenBuckets(behaviour.rate) if behaviour.rate else None,
        )


@dataclass
class Outcome:
    status: int
    sent: int = 0
    origin_seconds: float = 0.0


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


async def _stream_body(receive: Receive, limit: int) -> AsyncIterator[bytes]:
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        if chunk:
            yield chunk
        more = message.get("more_body", False)


async def request_body(
    receive: Receive, seen: dict[bytes, bytes], limit: int
) -> bytes | AsyncIterator[bytes] | None:
    """The body to send on, or None. Raises BodyTooLarge, ValueError (bad length)."""
    length = seen.get(b"content-length")
    if length is not None:
        if not length.isdigit():
            raise ValueError("Content-Length is not a number")
        size = int(length)
        if size > limit:
            raise BodyTooLarge
        if size == 0:
            return None
        return (
            await _read_body(receive, limit)
            if size <= SMALL
            else _stream_body(receive, limit)
        )
    if b"transfer-encoding" in seen:
        return await _read_body(receive, limit)
    return None


async def forward(
    route: Route,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    target: str,
    headers: list[tuple[bytes, bytes]],
    seen: dict[bytes, bytes],
    extra: list[tuple[bytes, bytes]],
    arrived: float,
) -> Outcome:
    """Send the request to the origin and its answer to the visitor; map failures."""
    method: str = scope["method"]
    head = method == "HEAD"
    try:
        data = await request_body(receive, seen, route.behaviour.max_body)
    except BodyTooLarge:
        return Outcome(await send_error(send, 413, extra, head=head))
    except ValueError:
        return Outcome(await send_error(send, 400, extra, head=head))
    except ClientGone:
        return Outcome(CLIENT_GONE)
    if isinstance(data, bytes):
        length: int | None = len(data)
    elif data is not None:
        length = int(seen[b"content-length"])
    else:
        length = 0 if method not in RETRYABLE else None
    if b"host" not in seen:
        headers = [*headers, (b"host", route.host_header.encode("latin-1"))]
    request = request_head(method, target, headers, length)
    timeout = route.behaviour.timeout
    asked = time.perf_counter()
    attempts = 2 if data is None and method in RETRYABLE else 1
    response: Response | None = None
    connection: Connection | None = None
    try:
        for attempt in range(attempts):
            connection = await route.pool.acquire(timeout, fresh=attempt > 0)
            try:
                response = await connection.send(request, data, timeout, no_body=head)
                break
            except StaleConnection:
                # A kept-alive connection the origin had just closed: once more.
                connection.close()
                if attempt + 1 == attempts:
                    raise
            except BaseException:
                connection.close()
                raise
    except BodyTooLarge:
        return Outcome(await send_error(send, 413, extra, head=head))
    except ClientGone:
        return Outcome(CLIENT_GONE)
    except UpstreamTimeout:
        return Outcome(await send_error(send, 504, extra, head=head))
    except (UpstreamError, OSError):
        return Outcome(await send_error(send, 502, extra, head=head))
    assert response is not None
    assert connection is not None
    origin_seconds = time.perf_counter() - asked
    body = response.read_now()
    if body is not None:
        # All of it came with the headers: no generator, no waiting.
        route.pool.release(connection)
        return await _relay(response, None, body, send, extra, arrived, origin_seconds)
    chunks = response.iter_body()
    small = response.content_length is not None and response.content_length <= SMALL
    try:
        if small:
            try:
                body = b"".join([chunk async for chunk in chunks])
            except UpstreamTimeout:
                return Outcome(await send_error(send, 504, extra, head=head))
            except (UpstreamError, OSError):
                return Outcome(await send_error(send, 502, extra, head=head))
        return await _relay(
            response, chunks, body, send, extra, arrived, origin_seconds
        )
    finally:
        await chunks.aclose()
        route.pool.release(connection)


def _timing(arrived: float, origin_seconds: float) -> tuple[bytes, bytes]:
    total = (time.perf_counter() - arrived) * 1000
    return (
        b"server-timing",
        f"edge;dur={total:.3f}, origin;dur={origin_seconds * 1000:.3f}".encode(),
    )


async def _relay(
    response: Response,
    chunks: AsyncGenerator[bytes, None] | None,
    body: bytes | None,
    send: Send,
    extra: list[tuple[bytes, bytes]],
    arrived: float,
    origin_seconds: float,
) -> Outcome:
    status = response.status
    headers = response_headers(
        response.headers, [*extra, _timing(arrived, origin_seconds)]
    )
    await send({"type": "http.response.start", "status": status, "headers": headers})
    if body is not None:
        await send({"type": "http.response.body", "body": body})
        return Outcome(status, len(body), origin_seconds)
    sent = 0
    assert chunks is not None
    try:
        async for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent += len(chunk)
    except (UpstreamError, UpstreamTimeout, OSError):
        # The status is out already: leave the response unfinished, so the server
        # drops the connection and the visitor sees a truncated body, not a clean one.
        return Outcome(status, sent, origin_seconds)
    await send({"type": "http.response.body", "body": b""})
    return Outcome(status, sent, origin_seconds)
