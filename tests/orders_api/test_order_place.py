"""Accepting orders against the allocation: exactly the allocation, never more, even
when many buyers arrive at once or Redis loses the counter mid-sale."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from common import events
from common.errors import InvalidRequest
from orders_api.admission import counter, keys, redis_client
from orders_api.exceptions import SaleNotOpen, SoldOut
from orders_api.models import Event, Order, Sale
from orders_api.ordering import services
from orders_api.outbox import relay as outbox
from tests.orders_api.conftest import sale_create

pytestmark = pytest.mark.django_db(transaction=True)


def place(quantity: int = 1) -> services.PlacedOrder:
    return services.order_place(
        slug="muskie-casting-rod",
        quantity=quantity,
        email="angler@example.com",
        trace_id=events.trace_id_new(),
    )


def test_an_order_and_its_event_are_written_together(sale: Sale) -> None:
    # When one order is placed
    placed = place(quantity=2)

    # Then the order and its outbox event exist, and the counter went down by 2
    order = Order.objects.get(pk=placed.order.pk)
    assert order.status == Order.Status.ACCEPTED
    assert order.total == order.unit_price * 2
    event = Event.objects.get(order=order)
    assert event.type == "orders.order-accepted"
    assert event.outbox_pending
    assert event.data["order_number"] == order.number
    assert event.trace_id == order.trace_id
    assert set(event.envelope()) == {
        "id", "type", "source", "time", "trace_id", "version", "data"
    }  # fmt: skip
    assert counter.counter_read(slug=sale.slug) == (8, True)


def test_the_allocation_sells_out_exactly(sale: Sale) -> None:
    # Given an allocation of 10; when 10 single units are bought
    for _ in range(10):
        place()

    # Then the 11th buyer is told it is sold out, and nothing more is written
    with pytest.raises(SoldOut):
        place()
    assert Order.objects.count() == 10
    assert counter.turned_away_count(slug=sale.slug) == 1


def test_more_units_than_are_left_is_sold_out_without_taking_any(sale: Sale) -> None:
    place(quantity=8)

    with pytest.raises(SoldOut):
        place(quantity=3)

    # The two left are still for sale
    place(quantity=2)
    assert sum(Order.objects.values_list("quantity", flat=True)) == 10


def test_concurrent_buyers_get_exactly_the_allocation(sale: Sale) -> None:
    # Given 10 units and 40 buyers at once
    outcomes: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(40)

    def buy() -> None:
        try:
            barrier.wait(timeout=10)
            place()
            outcomes.append("ok")
        except SoldOut:
            outcomes.append("sold-out")
        except BaseException as error:  # surfaced below, in the test's thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=buy) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors

    # Then exactly 10 were accepted
    assert outcomes.count("ok") == 10
    assert outcomes.count("sold-out") == 30
    assert Order.objects.count() == 10


def test_a_lost_counter_is_rebuilt_from_the_database(sale: Sale) -> None:
    # Given 4 units sold, 2 of them already folded into units_sold
    place(quantity=2)
    outbox.orders_tally(limit=100)
    place(quantity=2)

    # When Redis loses the counter
    redis_client.redis_get().delete(keys.counter_key(sale.slug))

    # Then the next buyer rebuilds it (10 - 2 sold - 2 pending) and buys
    place(quantity=1)
    assert counter.counter_read(slug=sale.slug) == (5, True)
    with pytest.raises(SoldOut):
        place(quantity=6)


def test_an_order_admitted_by_a_replaced_counter_is_admitted_again(
    sale: Sale,
) -> None:
    # Given units taken from the counter, then the counter rebuilt (a flush + rebuild)
    verdict = counter.counter_admit(slug=sale.slug, units=3)
    ticket = counter.Ticket(sale.slug, 3, verdict.generation, verdict.sale_id)
    from orders_api.sales import services as sales

    sales.sale_counter_rebuild(sale=sale)

    # Then that admission no longer holds, and its release gives nothing back
    assert not counter.counter_generation_holds(ticket=ticket)
    counter.counter_release(ticket=ticket)
    assert counter.counter_read(slug=sale.slug) == (10, True)


def test_a_closed_sale_takes_no_orders(transactional_db: None) -> None:
    sale_create(units=5, status=Sale.Status.CLOSED)

    with pytest.raises(SaleNotOpen):
        place()
    assert Order.objects.count() == 0


@pytest.mark.parametrize("quantity", [0, -1, 11, True])
def test_a_quantity_outside_1_to_10_is_refused(sale: Sale, quantity: int) -> None:
    with pytest.raises(InvalidRequest):
        place(quantity=quantity)
    assert Order.objects.count() == 0
    assert counter.counter_read(slug=sale.slug) == (10, True)


def test_the_sold_count_never_exceeds_the_allocation_in_the_database(
    sale: Sale,
) -> None:
    # Given a sold-out sale folded into units_sold
    place(quantity=10)
    outbox.orders_tally(limit=100)
    sale.refresh_from_db()
    assert sale.units_sold == 10

    # When something tries to push units_sold past the allocation
    from django.db import IntegrityError

    with pytest.raises(IntegrityError):
        Sale.objects.filter(pk=sale.pk).update(units_sold=11)
