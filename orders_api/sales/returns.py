"""Units of failed orders go back to their sale, once per order.

An order that fails (the fulfillment queue dead-lettered it) will not be shipped, so
its units are for sale again: in the database (the order leaves `units_sold`, or is
never folded in) and in the Redis counter (after commit, to the generation that was
current inside the transaction: a rebuild that runs after the commit counts the
release itself, so the late HINCRBY is refused and nothing is counted twice).

A replay of the dead letter afterwards takes the units back first, if the sale still
has them, or is not sent at all (ordering/reclaim.py, the inverse of this module): a
released order that ships anyway (`shipped_after_release` in sales/ledger.py) would be
an oversell, and stays 0.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import F

from orders_api.admission import counter
from orders_api.models import Order, Sale


def order_units_release(*, order: Order) -> int:
    """Give a failed order's units back to its sale; 0 when it was done before.

    Inside the transaction that moved the order to failed, its row locked (so
    `order.tallied` is current and the relay's tally skips it meanwhile).
    """
    if order.units_released:
        return 0
    units = order.quantity
    # Tallied: its units left the sold figure; not yet: it never will be folded in.
    sold = F("units_sold") - units if order.tallied else F("units_sold")
    Order.objects.filter(pk=order.pk).update(units_released=True, tallied=True)
    Sale.objects.filter(pk=order.sale_id).update(
        units_sold=sold, units_released=F("units_released") + units
    )
    order.units_released = order.tallied = True
    # Read after the UPDATE of the order: a rebuild (LOCK TABLE ... SHARE) now waits
    # for this commit, so this generation is the one that has not counted it yet.
    slug = Sale.objects.values_list("slug", flat=True).get(pk=order.sale_id)
    generation = counter.counter_generation(slug=slug)
    if generation is not None:
        ticket = counter.Ticket(
            slug=slug, units=units, generation=generation, sale_id=order.sale_id
        )
        transaction.on_commit(lambda: counter.counter_release(ticket=ticket))
    return units
