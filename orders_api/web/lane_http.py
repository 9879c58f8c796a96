"""What both ASGI lanes in front of Django need (web/fast_lane.py, the accept;
web/status_lane.py, an order's status): the request's headers, Django's host check,
its body read and replayed to Django, an answer with the headers DRF and the
middleware give the view's, and the orders service's server span.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from django.conf import settings
from django.http.request import split_domain_port, validate_host
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind

from common.cache_control import PERSONAL
from common.middleware import TRACE_ID_HEADER
from common.tracing.core import (
    current_trace_id,
    span_start,
    tracing_enabled,
    tracing_setup,
)

SERVICE_NAME = "orders-api"
# The instrumentation scope of the lanes' server spans.
LANE_SCOPE = "orders_api.web.lane"

logger = logging.getLogger(__name__)


def request_headers(scope: dict[str, Any]) -> dict[str, str]:
    return {
        name.decode("latin1").lower(): value.decode("latin1")
        for name, value in scope.get("headers", [])
    }


def host_allowed(headers: dict[str, str]) -> bool:
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    domain, _ = split_domain_port(headers.get("host", ""))
    return bool(domain) and validate_host(domain, allowed)


@cache
def answer_headers(allow: str) -> list[tuple[bytes, bytes]]:
    """What the view's answer gets from DRF and the middleware, every time."""
    pairs = [
        ("vary", "Cookie"),
        ("allow", allow),
        ("x-frame-options", settings.X_FRAME_OPTIONS),
        # An order's answer is nobody else's (common.cache_control).
        ("cache-control", PERSONAL),
    ]
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        pairs.append(("x-content-type-options", "nosniff"))
    if settings.SECURE_REFERRER_POLICY:
        pairs.append(("referrer-policy", str(settings.SECURE_REFERRER_POLICY)))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        pairs.append(
            (
                "cross-origin-opener-policy",
                str(settings.SECURE_CROSS_ORIGIN_OPENER_POLICY),
            )
        )
    return [(k.encode(), v.encode()) for k, v in pairs]


async def json_answer(
    send: Any,
    allow: str,
    status: int,
    body: dict[str, Any] | bytes,
    extra: dict[str, str],
) -> None:
    """Answer `body` (a dict, or JSON already rendered) as the view would."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
        *answer_headers(allow),
        *((k.lower().encode(), v.encode()) for k, v in extra.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


async def traced_answer(
    send: Any,
    span: Span,
    allow: str,
    status: int,
    body: dict[str, Any] | bytes,
    extra: dict[str, str],
) -> None:
    """json_answer from inside lane_span: the trace named in `X-Trace-Id` (as
    common.middleware.TraceIdMiddleware names Django's), the status on the span."""
    trace_id = current_trace_id()
    if trace_id:
        extra = {**extra, TRACE_ID_HEADER: trace_id}
    if span.is_recording():
        span.set_attribute("http.status_code", status)
    await json_answer(send, allow, status, body, extra)


@contextmanager
def lane_span(
    scope: dict[str, Any], headers: dict[str, str], *, route: str, started_ns: int
) -> Iterator[Span]:
    """The orders service's server span of a request a lane answers, current inside
    (psycopg's and Redis's spans are its children; an outbox row carries it to the
    relay): the name and attributes Django's server span has for the view of
    `route`, from `started_ns`, when the request came in."""
    if not tracing_enabled():
        yield trace.INVALID_SPAN
        return
    tracing_setup(SERVICE_NAME)
    span = span_start(
        LANE_SCOPE,
        f"{scope['method']} {route}",
        context=propagate.extract(headers),
        kind=SpanKind.SERVER,
        start_time=started_ns,
    )
    if span.is_recording():
        # What Django's server span carries (common/tracing/server_span.py): the
        # attributes the trace readers use, and which lane answered.
        span.set_attributes(
            {
                "http.method": scope["method"],
                "http.target": scope["path"],
                "http.route": route,
                "orders.lane": "event-loop",
            }
        )
    with trace.use_span(span, end_on_exit=True):
        yield span


async def body_read(receive: Any) -> tuple[bytes, bool]:
    """The request's body if it fits DATA_UPLOAD_MAX_MEMORY_SIZE; (what was read,
    False) when it does not (Django answers 413)."""
    chunks: list[bytes] = []
    size, limit = 0, settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
        if limit is not None and size > limit:
            return b"".join(chunks), False


def replaying(body: bytes, complete: bool, receive: Any) -> Any:
    """A receive() for Django: the body already read, then the rest as it comes."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": not complete}
        return await receive()

    return replay


async def lifespan_serve(
    receive: Any,
    send: Any,
    *,
    startup: Callable[[], Awaitable[None]],
    shutdown: Callable[[], None],
) -> None:
    """ASGI's lifespan protocol for the lanes (Django's handler does not speak it):
    `startup` before the first request, whose failure is logged and never stops the
    server (the lanes open what they need as they go), `shutdown` at the end."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await startup()
            except Exception:
                logger.warning(
                    "the lanes' start-up failed; they open as they go", exc_info=True
                )
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return
