"""A failed order takes its units back from the sale before its dead letter is
replayed: the inverse of sales/returns.py.

A failed order gave its units back to the sale (they may have been sold again since).
Before the fulfillment queue replays its dead letter, it asks here; the order ships
again only if its units are still for sale, taken back exactly as an order takes
them: from the Redis counter first (units_admit, the order path's own admission),
then one durable transaction that moves the order back to `queued`, un-releases it
(Order.units_released, Sale.units_released) and counts it sold, and checks that the
counter which admitted it was not rebuilt meanwhile (see admission/counter.py).
Sold out or a sale no longer open: UnitsGone, nothing changed. An order that gave
nothing back (not failed, or failed before units were given back) is left as it is,
so a second reclaim of the same order is a no-op.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F

from common.errors import NotFound
from orders_api.admission import counter
from orders_api.exceptions import SaleNotOpen, ServiceBusy, SoldOut, UnitsGone
from orders_api.models import Order, Sale
from orders_api.ordering.life_cycle import order_status_change
from orders_api.ordering.services import ADMIT_ATTEMPTS, units_admit
from orders_api.sales.selectors import sale_remaining_in_db

logger = logging.getLogger(__name__)

SOLD_AGAIN = "sold again after the order failed"
SALE_CLOSED = "the sale is no longer open"


@dataclass(frozen=True)
class Reclaimed:
    order: Order
    # Units taken back from the sale; 0 when the order had none to take.
    units: int


class _Readmit(Exception):
    """The counter that admitted the units was rebuilt before the commit."""


class _NothingToReclaim(Exception):
    """Another reclaim of the same order committed first."""


def _units_gone(order: Order, reason: str) -> UnitsGone:
    return UnitsGone(
        f"The units of order {order.number} are gone: {reason}.", reason=reason
    )


def _reclaimable(order: Order) -> bool:
    return order.status == Order.Status.FAILED and order.units_released


def _units_take(*, order: Order, sale: Sale) -> counter.Ticket:
    """The order's units from the counter, or UnitsGone (nothing taken)."""
    if sale.status != Sale.Status.OPEN:
        raise _units_gone(order, SALE_CLOSED)
    counted = counter.counter_read(slug=sale.slug)
    # Looked at first: a refused admission counts as a buyer turned away.
    if counted is not None and counted[1] and counted[0] < order.quantity:
        raise _units_gone(order, SOLD_AGAIN)
    try:
        ticket = units_admit(sale=sale, units=order.quantity)
    except SoldOut:
        raise _units_gone(order, SOLD_AGAIN) from None
    except SaleNotOpen:
        raise _units_gone(order, SALE_CLOSED) from None
    if ticket.sale_id != sale.pk:  # the counter is a later sale's
        counter.counter_release(ticket=ticket)
        raise _units_gone(order, SALE_CLOSED)
    return ticket


def _order_take_back(*, number: str, ticket: counter.Ticket) -> Order:
    """Inside the transaction: the order un-released and queued, its sale's figures."""
    order = Order.objects.select_for_update().get(number=number)
    if not _reclaimable(order):
        raise _NothingToReclaim
    # The order's row is written before the sale's is locked, as the failure's
    # release does: a close (LOCK TABLE of orders, then the sale's row) then waits
    # for this commit instead of deadlocking with it.
    order_status_change(order=order, status=Order.Status.QUEUED)
    Order.objects.filter(pk=order.pk).update(units_released=False)
    order.units_released = False
    sale = Sale.objects.select_for_update().get(pk=order.sale_id)
    if sale.status != Sale.Status.OPEN:
        raise _units_gone(order, SALE_CLOSED)
    # The order is tallied (the release made it so): it is in neither figure yet.
    if sale_remaining_in_db(sale_id=sale.pk) < order.quantity:
        raise _units_gone(order, SOLD_AGAIN)
    Sale.objects.filter(pk=sale.pk).update(
        units_sold=F("units_sold") + order.quantity,
        units_released=F("units_released") - order.quantity,
    )
    # After the order's UPDATE: a rebuild from here on waits for this commit.
    if not counter.counter_generation_holds(ticket=ticket):
        raise _Readmit
    return order


def order_units_reclaim(*, number: str) -> Reclaimed:
    """Take a failed order's released units back from its sale, if still for sale.

    Raises NotFound (no such order), UnitsGone (sold again, or the sale is not
    open: nothing changed), ServiceBusy (the counter kept being rebuilt).
    """
    order = Order.objects.select_related("sale").filter(number=number).first()
    if order is None:
        raise NotFound(f"No order {number!r}.")
    if not _reclaimable(order):
        return Reclaimed(order=order, units=0)
    for _ in range(ADMIT_ATTEMPTS):
        ticket = _units_take(order=order, sale=order.sale)
        try:
            with transaction.atomic(durable=True):
                order = _order_take_back(number=number, ticket=ticket)
        except _Readmit:
            continue  # the rebuilt counter counted the units as for sale: none owed
        except _NothingToReclaim:
            counter.counter_release(ticket=ticket)
            return Reclaimed(order=Order.objects.get(number=number), units=0)
        except BaseException:
            counter.counter_release(ticket=ticket)
            raise
        logger.info("order %s took back %d units", number, order.quantity)
        return Reclaimed(order=order, units=order.quantity)
    raise ServiceBusy("The sale is busy; please try again in a moment.")
