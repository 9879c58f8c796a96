"""A sale's ledger: where every unit taken from the shop is now.

    allocated = fulfilled + in_flight + available + returned_to_shop

`allocated` is what `sale open` took from the shop. An order's units are fulfilled or
in flight (accepted, queued, in the warehouse) until it fails: then they are back in
`available` (or went back to the shop with the close, or are held by a sale that had
already closed when the order failed: `available` of a closed sale). The figures are
counted from the orders themselves, not from `units_sold`, so the identity checks the
books. Beside it: what the Redis counter says, and the units it holds for admissions
that have no order (in flight, or lost by a crash until the relay's reconciliation).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, Sum

from orders_api.admission import counter
from orders_api.models import Order, Sale
from orders_api.sales.selectors import sale_remaining_in_db

S = Order.Status
IN_FLIGHT = [S.ACCEPTED, S.QUEUED, S.IN_WAREHOUSE, S.FAILED]


def sale_ledger(*, sale: Sale) -> dict[str, Any]:
    """The sale's units, accounted for; `balanced` says whether they add up."""
    kept = Q(units_released=False)
    released = Q(units_released=True)
    sums = Order.objects.filter(sale=sale).aggregate(
        fulfilled=Sum("quantity", filter=kept & Q(status=S.FULFILLED)),
        in_flight=Sum("quantity", filter=kept & Q(status__in=IN_FLIGHT)),
        released=Sum("quantity", filter=released),
        shipped_after_release=Sum(
            "quantity", filter=released & Q(status__in=[S.IN_WAREHOUSE, S.FULFILLED])
        ),
    )
    figures = {name: int(value or 0) for name, value in sums.items()}
    allocated = sale.units_allocated + sale.units_returned
    available = sale_remaining_in_db(sale_id=sale.pk)
    counted = counter.counter_read(slug=sale.slug)
    in_counter = counted[0] if counted is not None and counted[1] else None
    return {
        "allocated": allocated,
        "fulfilled": figures["fulfilled"],
        "in_flight": figures["in_flight"],
        "available": available,
        "returned_to_shop": sale.units_returned,
        # Units of failed orders given back to the sale: now in `available`, sold
        # again, or returned to the shop with the close.
        "released_by_failed_orders": figures["released"],
        # Released orders shipped after all (a replay that did not take their
        # units back first, as ordering/reclaim.py makes every replay do): 0.
        "shipped_after_release": figures["shipped_after_release"],
        "counter": in_counter,
        # Taken from the counter with no order written (yet, or ever: a crash).
        "held_by_admissions": None if in_counter is None else available - in_counter,
        "balanced": allocated
        == figures["fulfilled"]
        + figures["in_flight"]
        + available
        + sale.units_returned,
    }
