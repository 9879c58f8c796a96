"""Reads of the orders service: sales, remaining stock, orders, journeys, the board."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any

from django.db import DatabaseError, connection
from django.db.models import Count, Q, QuerySet, Sum

from orders_api import admission
from orders_api.exceptions import Forbidden, NotAuthenticated, NotFound
from orders_api.models import Event, Order, Sale

_LIVE = [Sale.Status.OPENING, Sale.Status.OPEN, Sale.Status.CLOSING]
# The hot path reads the sale from memory; the counter in Redis has the live state.
SALE_CACHE_SECONDS = 2.0
_sale_cache: dict[str, tuple[float, Sale | None]] = {}
_sale_cache_lock = threading.Lock()


def sale_current(*, slug: str) -> Sale | None:
    """The live sale of a product, else its most recent one, else None."""
    live = Sale.objects.filter(slug=slug, status__in=_LIVE).first()
    return live or Sale.objects.filter(slug=slug).order_by("-created_at").first()


def sale_current_cached(*, slug: str, fresh: bool = False) -> Sale | None:
    now = time.monotonic()
    cached = _sale_cache.get(slug)
    if not fresh and cached is not None and now - cached[0] < SALE_CACHE_SECONDS:
        return cached[1]
    sale = sale_current(slug=slug)
    with _sale_cache_lock:
        _sale_cache[slug] = (now, sale)
    return sale


def sale_current_open_cached(*, slug: str) -> Sale | None:
    """The live sale from the per-process cache while it is open; else read afresh.

    For the hot paths (buyers' page views, buys, orders): an open sale is read at
    most once per SALE_CACHE_SECONDS, and a closed or missing one is never trusted
    from the cache.
    """
    sale = sale_current_cached(slug=slug)
    if sale is None or sale.status != Sale.Status.OPEN:
        sale = sale_current_cached(slug=slug, fresh=True)
    return sale


def sale_remaining_in_db(*, sale_id: int) -> int:
    """allocated - sold - pending, in ONE statement (one snapshot)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT s.units_allocated - s.units_sold - COALESCE(
                (SELECT SUM(o.quantity) FROM orders_api_order o
                 WHERE o.sale_id = s.id AND NOT o.tallied), 0)
            FROM orders_api_sale s WHERE s.id = %s
            """,
            [sale_id],
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def sale_remaining(*, sale: Sale) -> int:
    """Units still for sale: the Redis counter, or the database when it is missing."""
    if sale.status != Sale.Status.OPEN:
        return 0
    counted = admission.counter_read(slug=sale.slug)
    if counted is not None:
        return counted[0]
    return max(sale_remaining_in_db(sale_id=sale.pk), 0)


def sale_board(*, sale: Sale) -> dict[str, Any]:
    """The live sale board's figures."""
    counts = Order.objects.filter(sale=sale).aggregate(
        orders=Count("pk"),
        units=Sum("quantity"),
        **{
            status.value: Count("pk", filter=Q(status=status.value))
            for status in Order.Status
        },
    )
    remaining = sale_remaining(sale=sale)
    return {
        "sale": sale.slug,
        "name": sale.name,
        "status": sale.status,
        "allocated": sale.units_allocated,
        "remaining": remaining,
        "sold_out": sale.status == Sale.Status.OPEN and remaining <= 0,
        "units_sold": counts["units"] or 0,
        "accepted": counts["orders"],
        "queued": counts[Order.Status.ACCEPTED.value] + counts[Order.Status.QUEUED],
        "in_warehouse": counts[Order.Status.IN_WAREHOUSE.value],
        "fulfilled": counts[Order.Status.FULFILLED.value],
        "failed": counts[Order.Status.FAILED.value],
        "turned_away": admission.turned_away_count(slug=sale.slug),
    }


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def order_get(*, order_id: uuid.UUID | str) -> Order:
    try:
        return Order.objects.select_related("sale").get(pk=order_id)
    except (Order.DoesNotExist, ValueError, DatabaseError):
        raise NotFound("No such order.") from None


def order_get_visible(
    *, order_id: uuid.UUID | str, token: str | None, session_orders: Iterable[str]
) -> Order:
    """An order for its owner's session or the holder of its access token.

    404 unknown, 401 neither session nor token, 403 a wrong token.
    """
    order = order_get(order_id=order_id)
    if str(order.pk) in set(session_orders):
        return order
    if not token:
        raise NotAuthenticated(
            "Show the order's access token (?token=...) or use the session that "
            "placed it."
        )
    if not hmac.compare_digest(token_hash(token), order.access_token_hash):
        raise Forbidden("That access token is not this order's.")
    return order


def order_list_for_sale(*, sale: Sale, offset: int, limit: int) -> list[Order]:
    """A page of a sale's orders, oldest first (a stable order: by time, then id)."""
    return list(
        Order.objects.filter(sale=sale).order_by("created_at", "pk")[
            offset : offset + limit
        ]
    )


def order_journey(*, order: Order) -> QuerySet[Event]:
    return Event.objects.filter(order=order).order_by("time", "recorded_at")


def order_state(*, order: Order) -> dict[str, Any]:
    """What the status page and its websocket show."""
    return {
        "id": str(order.pk),
        "number": order.number,
        "status": order.status,
        "status_label": order.get_status_display(),
        "quantity": order.quantity,
        "name": order.name,
        "updated_at": order.updated_at.isoformat(),
    }


def database_ping() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except DatabaseError:
        return False
