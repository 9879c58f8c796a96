"""Reads of sales: the live sale, the current one (cached for the hot path), the units
left and the sale board's figures."""

from __future__ import annotations

import threading
import time
from typing import Any

from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum

from common.redis_client import REDIS_FAULTS
from orders_api.admission import counter
from orders_api.models import LIVE_SALE_STATUSES, Order, Sale

# The hot path reads the sale from memory; the counter in Redis has the live state.
SALE_CACHE_SECONDS = 2.0
_sale_cache: dict[str, tuple[float, Sale | None]] = {}
_sale_cache_lock = threading.Lock()


def sales_live(*, slug: str | None = None) -> QuerySet[Sale]:
    """Sales that hold shop stock (opening, open or closing): at most one a product.

    THE definition of a live sale (the database's unique constraint says the same).
    """
    live = Sale.objects.filter(status__in=LIVE_SALE_STATUSES)
    return live if slug is None else live.filter(slug=slug)


def sale_current(*, slug: str) -> Sale | None:
    """The live sale of a product, else its most recent one, else None."""
    live = sales_live(slug=slug).first()
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


# A sale's product snapshot (sku, name, price, category) never changes once it is
# open: the lean accept keeps it per process by id, for as long as the process runs.
_sale_snapshots: dict[int, Sale] = {}


def sale_snapshot_held(*, sale_id: int) -> Sale | None:
    """The snapshot sale_snapshot read already in this process, or None: no
    database (for the event loop, web/fast_accept.py)."""
    return _sale_snapshots.get(sale_id)


def sale_snapshot_keep(*, sale: Sale | None) -> Sale | None:
    """Keep a sale just read as its snapshot if it is open; the sale, or None."""
    if sale is None or sale.status != Sale.Status.OPEN:
        return None
    with _sale_cache_lock:
        _sale_snapshots[sale.pk] = sale
    return sale


def sale_snapshot(*, sale_id: int) -> Sale | None:
    """The sale by id, read once per process (its snapshot fields only are to be
    trusted from here: its status lives in the Redis counter)."""
    sale = _sale_snapshots.get(sale_id)
    if sale is None:
        return sale_snapshot_keep(sale=Sale.objects.filter(pk=sale_id).first())
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
    """Units still for sale: the Redis counter, or the database when it is missing
    or Redis is down (the pages that show it keep answering)."""
    if sale.status != Sale.Status.OPEN:
        return 0
    try:
        counted = counter.counter_read(slug=sale.slug)
    except REDIS_FAULTS:
        counted = None
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
    try:
        turned_away = counter.turned_away_count(slug=sale.slug)
    except REDIS_FAULTS:
        turned_away = 0  # counted in Redis only: unknown while it is down
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
        "turned_away": turned_away,
    }


def order_list_for_sale(*, sale: Sale, offset: int, limit: int) -> list[Order]:
    """A page of a sale's orders, oldest first (a stable order: by time, then id)."""
    return list(
        Order.objects.filter(sale=sale).order_by("created_at", "pk")[
            offset : offset + limit
        ]
    )
