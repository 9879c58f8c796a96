"""Sales: the allocation taken from the shop, given back, and its Redis counter.

`sale open` takes N units of the shop's stock over the shop's internal API (a stock
transfer, idempotent on its transfer_id, so a retry after a crash is safe) and
`sale close` gives the unsold ones back. The counter in Redis is always rebuilt from
the database under a table lock (see admission/counter.py for why that is enough).
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone
from redis.exceptions import LockError

from common.errors import ApplicationError, InvalidRequest
from orders_api.admission import counter
from orders_api.exceptions import InvalidSaleStatus, SaleNotOpen
from orders_api.models import Order, Sale
from orders_api.sales import selectors, shop_client

S = Sale.Status
# A sale only moves forward; a crash leaves it where a re-run resumes it.
SALE_TRANSITIONS: dict[str, frozenset[str]] = {
    S.OPENING: frozenset({S.OPEN}),
    S.OPEN: frozenset({S.CLOSING}),
    S.CLOSING: frozenset({S.CLOSED}),
    S.CLOSED: frozenset(),
}


class SaleAlreadyOpen(ApplicationError):
    status_code = 409
    code = "sale_already_open"


def _sale_status_change(*, sale: Sale, status: str, **fields: Any) -> None:
    """Move a sale along SALE_TRANSITIONS (with `fields`), or InvalidSaleStatus.

    The UPDATE is filtered on the from-states, so a concurrent change is refused
    rather than overwritten.
    """
    sources = [old for old, new in SALE_TRANSITIONS.items() if status in new]
    now = timezone.now()
    changed = Sale.objects.filter(pk=sale.pk, status__in=sources).update(
        status=status, updated_at=now, **fields
    )
    if not changed:
        current = Sale.objects.filter(pk=sale.pk).values_list("status", flat=True)
        raise InvalidSaleStatus(
            f"The {sale.name} sale cannot go from {current.first()} to {status}."
        )


def _lock_orders() -> None:
    """Wait for every transaction that inserted an order; keep new ones out."""
    table = Order._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f'LOCK TABLE "{table}" IN SHARE MODE')


def sale_counter_rebuild(*, sale: Sale) -> int:
    """Rebuild a sale's Redis counter from the database; returns the units left."""
    with transaction.atomic():
        _lock_orders()
        sale = Sale.objects.get(pk=sale.pk)
        is_open = sale.status == Sale.Status.OPEN
        remaining = selectors.sale_remaining_in_db(sale_id=sale.pk) if is_open else 0
        # Written before the lock is released: no order commits in between.
        counter.counter_write(
            slug=sale.slug,
            sale_id=sale.pk,
            remaining=remaining,
            open_=is_open,
            name=sale.name,
        )
    return remaining


def sale_counter_rebuild_if_missing(*, sale: Sale) -> None:
    """The counter is gone (Redis flushed): one process rebuilds it, others wait."""
    lock = counter.rebuild_lock(slug=sale.slug)
    if not lock.acquire(blocking=True, blocking_timeout=5):
        return
    try:
        if counter.counter_read(slug=sale.slug) is None:
            current = selectors.sale_current(slug=sale.slug) or sale
            sale_counter_rebuild(sale=current)
    finally:
        with contextlib.suppress(LockError):
            lock.release()


def sales_counters_rebuild() -> list[tuple[str, int]]:
    """Every live sale's counter, from the database (the relay does it on start)."""
    rebuilt = []
    for sale in selectors.sales_live():
        rebuilt.append((sale.slug, sale_counter_rebuild(sale=sale)))
    return rebuilt


def sales_counters_reconcile(
    *, seen: dict[str, counter.Reading | None]
) -> list[tuple[str, int]]:
    """Rebuild the counter of every open sale that stood still and disagrees with the
    database.

    Units taken from the counter by a request that died before its commit (a crash,
    a SIGKILL) are otherwise lost until a restart; the relay runs this every
    ORDERS_RECONCILE_SECONDS, with `seen` (its last look at each counter) kept
    between rounds. A counter that moved since the last look (admissions or
    give-backs: a sale in progress) is only noted: its requests may be between their
    admission and their commit, and a rebuild then would send each of them round
    again under a table lock, at the worst moment (in a rush, every 15 s). One that
    stood still a whole round is compared: counter first, then the database, so an
    order committing in between is counted by both. Returns (slug, units the counter
    was missing).
    """
    rebuilt = []
    for sale in selectors.sales_live().filter(status=Sale.Status.OPEN):
        reading = counter.counter_reading(slug=sale.slug)
        moved = sale.slug not in seen or seen[sale.slug] != reading
        seen[sale.slug] = reading
        if reading is not None and moved:
            continue
        in_db = max(selectors.sale_remaining_in_db(sale_id=sale.pk), 0)
        if reading is None or reading.remaining != in_db:
            missing = in_db - (reading.remaining if reading else 0)
            sale_counter_rebuild(sale=sale)
            seen.pop(sale.slug, None)
            rebuilt.append((sale.slug, missing))
    return rebuilt


def _sku_for(slug: str, sku: str | None) -> str:
    if sku:
        return sku
    try:
        return settings.SALE_PRODUCTS[slug]
    except KeyError:
        raise InvalidRequest(
            f"No SKU known for {slug!r}; pass --sku (known: "
            f"{', '.join(sorted(settings.SALE_PRODUCTS))})."
        ) from None


def sale_open(*, slug: str, units: int, sku: str | None = None) -> Sale:
    """Take `units` of the product's shop stock and open its sale.

    A sale left `opening` by a crash is resumed with its own transfer id. Raises
    SaleAlreadyOpen, ShopRefused (not enough stock: nothing taken), ShopUnavailable.
    """
    if units < 1:
        raise InvalidRequest("A sale needs at least one unit.")
    live = selectors.sales_live(slug=slug).first()
    if live is not None and live.status != Sale.Status.OPENING:
        raise SaleAlreadyOpen(f"The {live.name} sale is already {live.status}.")
    if live is not None and live.units_requested != units:
        raise SaleAlreadyOpen(
            f"A sale of {live.units_requested} units is half-open; open it with "
            f"--units {live.units_requested} to finish, or close it."
        )
    sale = live or _sale_create(slug=slug, units=units, sku=_sku_for(slug, sku))
    try:
        shop_client.stock_transfer(
            transfer_id=sale.open_transfer_id, sku=sale.sku, units=sale.units_requested
        )
    except shop_client.ShopRefused:
        sale.delete()  # the shop took nothing
        raise
    shop_client.product_sale_mark(sku=sale.sku, sale_url=_sale_url(sale))
    _sale_status_change(
        sale=sale,
        status=S.OPEN,
        units_allocated=sale.units_requested,
        opened_at=timezone.now(),
    )
    sale.refresh_from_db()
    sale_counter_rebuild(sale=sale)
    return sale


def _sale_url(sale: Sale) -> str:
    """Where buyers find the sale: its board, a path behind the edge."""
    return reverse("orders:board", kwargs={"slug": sale.slug})


def _sale_create(*, slug: str, units: int, sku: str) -> Sale:
    snapshot = shop_client.product_snapshot_get(sku=sku)
    if snapshot.slug != slug:
        raise InvalidRequest(
            f"SKU {sku} is the shop's {snapshot.slug!r}, not {slug!r}."
        )
    try:
        return Sale.objects.create(
            slug=slug,
            status=Sale.Status.OPENING,
            sku=snapshot.sku,
            name=snapshot.name,
            price=snapshot.price,
            description=snapshot.description,
            image=snapshot.image,
            category_name=snapshot.category_name,
            category_slug=snapshot.category_slug,
            units_requested=units,
            open_transfer_id=f"sale-open-{uuid.uuid4().hex}",
        )
    except IntegrityError:
        raise SaleAlreadyOpen(f"A sale of {slug!r} is being opened.") from None


def sale_close(*, slug: str) -> Sale:
    """Stop taking orders and give the unsold units back to the shop.

    Order matters: the counter is closed first (in-flight orders admitted by it then
    fail their generation check), then the unsold units are counted under the table
    lock. A sale left `closing` by a crash resumes with its recorded transfer.
    """
    sale = selectors.sales_live(slug=slug).first()
    if sale is None:
        raise SaleNotOpen(f"No sale of {slug!r} is open.")
    if sale.status == Sale.Status.OPENING:
        raise SaleNotOpen("That sale is still opening; run `sale open` again first.")
    if sale.status == Sale.Status.OPEN:
        _sale_status_change(sale=sale, status=S.CLOSING)
        counter.counter_write(
            slug=slug, sale_id=sale.pk, remaining=0, open_=False, name=sale.name
        )
    sale.refresh_from_db()
    if not sale.close_transfer_id:
        with transaction.atomic():
            _lock_orders()
            sale = Sale.objects.select_for_update().get(pk=sale.pk)
            unsold = max(selectors.sale_remaining_in_db(sale_id=sale.pk), 0)
            sale.units_returned = unsold
            sale.units_allocated -= unsold
            sale.close_transfer_id = f"sale-close-{uuid.uuid4().hex}"
            sale.save()
    if sale.units_returned:
        shop_client.stock_transfer(
            transfer_id=sale.close_transfer_id, sku=sale.sku, units=-sale.units_returned
        )
    shop_client.product_sale_mark(sku=sale.sku, sale_url=None)
    _sale_status_change(sale=sale, status=S.CLOSED, closed_at=timezone.now())
    sale.refresh_from_db()
    counter.counter_write(
        slug=slug, sale_id=sale.pk, remaining=0, open_=False, name=sale.name
    )
    return sale
