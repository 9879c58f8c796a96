"""Pushing order states and sale-board figures to websocket groups (channels).

Best effort: a websocket client that misses a push gets the current state when it
(re)connects, so a failed push never fails the work that caused it.

Traced: each group_send is an `orders.push` span (its Redis PUBLISH inside it is not
recorded: common.tracing.message_publishing) in the trace of the work that caused
it: the task's (orders-worker), or the purchase's own stored context (the relay's
"queued"). A board push on the relay's timer belongs to no purchase and makes no
span.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, cast

import redis
from channels.layers import get_channel_layer
from opentelemetry import context as otel_context
from opentelemetry.trace import SpanKind

from common.tracing import message_publishing, span_from_carrier, span_in_trace
from orders_api.admission.keys import boards_dirty_key
from orders_api.admission.redis_client import redis_get
from orders_api.models import Order, Sale
from orders_api.ordering.presentation import order_state
from orders_api.sales import selectors

logger = logging.getLogger(__name__)


def order_group(order_id: Any) -> str:
    return f"order.{order_id}"


def sale_group(slug: str) -> str:
    return f"sale.{slug}"


# (group, message, the trace context to push in: None for the current one)
Push = tuple[str, dict[str, Any], Mapping[str, str] | None]


@contextlib.contextmanager
def _push_span(group: str, carrier: Mapping[str, str] | None) -> Iterator[None]:
    attributes = {
        "messaging.system": "channels",
        "messaging.operation.type": "send",
        "messaging.destination.name": group,
    }
    if carrier:
        with span_from_carrier(
            "orders.push", carrier, kind=SpanKind.PRODUCER, attributes=attributes
        ):
            yield
    else:
        with span_in_trace(
            "orders.push", kind=SpanKind.PRODUCER, attributes=attributes
        ):
            yield


# How long a caller waits for its pushes; a push is best effort (module docstring).
PUSH_TIMEOUT_SECONDS = 10.0

_loop: asyncio.AbstractEventLoop | None = None
_loop_pid = 0
_loop_lock = threading.Lock()


def _push_loop() -> asyncio.AbstractEventLoop:
    """One event loop per process, in a thread of its own, for every push.

    The callers are sync (Celery threads, the relay). `async_to_sync` would give each
    call a new loop on a new thread, and channels-redis a new Redis connection per
    loop: a TCP connect and close per push. Here the layer's connections live as long
    as the process. Made again after a fork.
    """
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid() or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(
                target=loop.run_forever, name="websocket-push", daemon=True
            ).start()
            _loop, _loop_pid = loop, os.getpid()
        return _loop


async def _send_all(messages: list[Push], caller: otel_context.Context) -> None:
    # The caller's trace context: a push span belongs to the work that caused it.
    token = otel_context.attach(caller)
    try:
        layer = get_channel_layer()
        if layer is None:
            raise RuntimeError("no channel layer is configured (CHANNEL_LAYERS)")
        for group, message, carrier in messages:
            # The push's span covers its Redis PUBLISH, which is not recorded.
            with _push_span(group, carrier), message_publishing():
                await layer.group_send(group, message)
    finally:
        otel_context.detach(token)


def _send(messages: list[Push]) -> None:
    if not messages:
        return
    try:
        future = asyncio.run_coroutine_threadsafe(
            _send_all(messages, otel_context.get_current()), _push_loop()
        )
        future.result(timeout=PUSH_TIMEOUT_SECONDS)
    except Exception:  # a push must never fail the caller (see module docstring)
        logger.warning("websocket push failed", exc_info=True)


def order_message(order: Order) -> dict[str, Any]:
    return {"type": "order.state", "state": order_state(order=order)}


def board_message(sale: Sale) -> dict[str, Any]:
    return {"type": "board.state", "board": selectors.sale_board(sale=sale)}


def orders_push(
    orders: Iterable[Order], *, traces: Mapping[Any, Mapping[str, str]] | None = None
) -> None:
    """Each order's new state to its group; its sale's board is marked for a push.

    `traces`: order id → the trace context to push that order's state in (else the
    current trace, if any).
    """
    traces = traces or {}
    messages: list[Push] = []
    slugs: set[str] = set()
    for order in orders:
        messages.append(
            (order_group(order.pk), order_message(order), traces.get(order.pk))
        )
        slugs.add(order.sale.slug)
    _send(messages)
    boards_mark_dirty(slugs)


def boards_mark_dirty(slugs: Iterable[str]) -> None:
    """The board figures changed; the relay pushes them (at most twice a second:
    computing them counts every order of the sale)."""
    slugs = list(slugs)
    if not slugs:
        return
    try:
        redis_get().sadd(boards_dirty_key(), *slugs)
    except redis.RedisError:
        logger.warning("could not mark boards for a push", exc_info=True)


def boards_push_dirty() -> int:
    """Push the board of every sale marked since the last call; returns how many."""
    client = redis_get()
    # The client decodes responses: SPOP with a count gives a list of str.
    slugs = cast("list[str]", client.spop(boards_dirty_key(), 100) or [])
    messages: list[Push] = []
    for slug in slugs:
        sale = selectors.sale_current(slug=slug)
        if sale is not None:
            messages.append((sale_group(slug), board_message(sale), None))
    _send(messages)
    return len(messages)
