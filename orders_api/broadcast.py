"""Pushing order states and sale-board figures to websocket groups (channels).

Best effort: a websocket client that misses a push gets the current state when it
(re)connects, so a failed push never fails the work that caused it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from orders_api import admission, selectors
from orders_api.models import Order, Sale

logger = logging.getLogger(__name__)


def order_group(order_id: Any) -> str:
    return f"order.{order_id}"


def sale_group(slug: str) -> str:
    return f"sale.{slug}"


async def _send_all(messages: list[tuple[str, dict[str, Any]]]) -> None:
    layer = get_channel_layer()
    for group, message in messages:
        await layer.group_send(group, message)


def _send(messages: list[tuple[str, dict[str, Any]]]) -> None:
    if not messages:
        return
    try:
        async_to_sync(_send_all)(messages)
    except Exception:  # a push must never fail the caller (see module docstring)
        logger.warning("websocket push failed", exc_info=True)


def order_message(order: Order) -> dict[str, Any]:
    return {"type": "order.state", "state": selectors.order_state(order=order)}


def board_message(sale: Sale) -> dict[str, Any]:
    return {"type": "board.state", "board": selectors.sale_board(sale=sale)}


def orders_push(orders: Iterable[Order]) -> None:
    """Each order's new state to its group; its sale's board is marked for a push."""
    messages: list[tuple[str, dict[str, Any]]] = []
    slugs: set[str] = set()
    for order in orders:
        messages.append((order_group(order.pk), order_message(order)))
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
        admission.redis_get().sadd(admission.boards_dirty_key(), *slugs)
    except redis.RedisError:
        logger.warning("could not mark boards for a push", exc_info=True)


def boards_push_dirty() -> int:
    """Push the board of every sale marked since the last call; returns how many."""
    client = admission.redis_get()
    slugs = client.spop(admission.boards_dirty_key(), 100) or []
    messages = []
    for slug in slugs:
        sale = selectors.sale_current(slug=slug)
        if sale is not None:
            messages.append((sale_group(slug), board_message(sale)))
    _send(messages)
    return len(messages)
