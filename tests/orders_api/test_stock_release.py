"""Stock that heals, in-process on the real PostgreSQL and Redis: a failed order's
units go back to the sale once, the ledger adds up, and redeliveries never grow a
backlog past its bound (read from the broker's real queue). The same across real
processes: test_stock_heals."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from common import events
from orders_api.admission import counter
from orders_api.admission.keys import counter_key
from orders_api.models import Order, Sale
from orders_api.ordering import life_cycle
from orders_api.outbox import relay as outbox
from orders_api.sales.ledger import sale_ledger
from orders_api.sales.selectors import sale_remaining_in_db
from orders_api.sales.services import sales_counters_reconcile
from tests.orders_api.conftest import sale_create
from tests.orders_api.test_life_cycle import fulfillment_event, placed_order, queue

pytestmark = pytest.mark.django_db(transaction=True)
__all__ = ["queue"]


def remaining(sale: Sale) -> tuple[int, int]:
    """(the Redis counter, the database) units left."""
    counted = counter.counter_read(slug=sale.slug)
    assert counted is not None
    return counted[0], sale_remaining_in_db(sale_id=sale.pk)


@pytest.mark.parametrize("tallied", [True, False], ids=["tallied", "not-tallied"])
def test_a_failed_order_gives_its_units_back_to_the_sale_once(
    sale: Sale, tallied: bool
) -> None:
    # Given a sale of 10 and two orders, folded into units_sold or not yet
    failing, kept = placed_order(), placed_order()
    if tallied:
        outbox.orders_tally(limit=10)
    assert remaining(sale) == (8, 8)

    # When the fulfillment queue reports the first one failed (dead-lettered)
    first = fulfillment_event(failing, events.ORDER_FAILED, reason="refused")
    assert life_cycle.fulfillment_event_record(raw=first).applied

    # Then its unit is for sale again, in Redis and in the database
    assert remaining(sale) == (9, 9)
    # and neither the same event again, nor a second failure (a replayed dead
    # letter that failed again), nor the relay's tally gives anything twice
    assert life_cycle.fulfillment_event_record(raw=first).duplicate
    started = fulfillment_event(failing, events.ORDER_STARTED)
    again = fulfillment_event(failing, events.ORDER_FAILED, reason="again")
    life_cycle.fulfillment_event_record(raw=started)
    assert life_cycle.fulfillment_event_record(raw=again).applied
    outbox.orders_tally(limit=10)
    assert remaining(sale) == (9, 9)
    sale.refresh_from_db()
    assert (sale.units_sold, sale.units_released) == (1, 1)
    # And the ledger explains every unit
    ledger = sale_ledger(sale=sale)
    assert ledger["allocated"] == 10
    assert (ledger["fulfilled"], ledger["in_flight"], ledger["available"]) == (0, 1, 9)
    assert ledger["released_by_failed_orders"] == 1
    assert ledger["held_by_admissions"] == 0
    assert ledger["allocated"] == (
        ledger["fulfilled"]
        + ledger["in_flight"]
        + ledger["available"]
        + ledger["returned_to_shop"]
    )
    assert ledger["balanced"]
    assert Order.objects.get(pk=kept.pk).units_released is False


def test_repeated_redeliveries_never_take_a_backlog_past_the_bound(
    transactional_db: None, queue: str, settings: Any
) -> None:
    # Given 40 accepted orders waiting on the queue, no worker to take them
    sale_create(units=60)
    for _ in range(40):
        placed_order()
    publish = outbox.celery_publisher()
    assert outbox.outbox_publish_batch(publish=publish, limit=100) == 40
    assert outbox.queue_depth(queue=queue) == 40
    settings.ORDERS_REDELIVER_QUEUE_BOUND = 50

    # When every order is overdue and the relay's redelivery runs pass after pass
    depths = []
    for _ in range(5):
        outbox.orders_redeliver(older_than=timedelta(0))
        outbox.outbox_publish_batch(publish=publish, limit=100)
        depths.append(outbox.queue_depth(queue=queue))

    # Then the queue filled up to its bound once, and never grew past it
    assert depths == [50] * 5


def test_the_reconcile_leaves_a_moving_counter_alone_and_heals_a_still_one(
    sale: Sale,
) -> None:
    # Given a sale of 10 whose counter gave 2 units to requests not yet committed
    seen: dict[str, counter.Reading | None] = {}
    for _ in range(2):
        assert counter.counter_admit(slug=sale.slug, units=1).admitted
    generation = counter.counter_generation(slug=sale.slug)
    assert remaining(sale) == (8, 10)

    # When the relay looks while admissions go on (a rush: each round, one more)
    for _ in range(3):
        assert sales_counters_reconcile(seen=seen) == []
        assert counter.counter_admit(slug=sale.slug, units=1).admitted

    # Then it never rebuilt: no request was sent round its admission again
    assert counter.counter_generation(slug=sale.slug) == generation
    assert remaining(sale) == (5, 10)

    # and once the counter stood still a whole round (those requests died), the next
    # look gives their 5 units back, under a new generation
    assert sales_counters_reconcile(seen=seen) == []
    assert sales_counters_reconcile(seen=seen) == [(sale.slug, 5)]
    assert counter.counter_generation(slug=sale.slug) != generation
    assert remaining(sale) == (10, 10)
    # and a counter that agrees with the database is left as it is
    assert sales_counters_reconcile(seen=seen) == []
    assert sales_counters_reconcile(seen=seen) == []


def test_the_reconcile_rebuilds_a_missing_counter_at_once(sale: Sale) -> None:
    # Given an open sale whose counter is gone (Redis flushed)
    counter.redis_get().delete(counter_key(sale.slug))
    # When the relay looks for the first time, Then it rebuilds it from the database
    assert sales_counters_reconcile(seen={}) == [(sale.slug, 10)]
    assert remaining(sale) == (10, 10)
