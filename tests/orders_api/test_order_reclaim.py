"""POST /internal/orders/<number>/reclaim: a failed order takes its units back before
its dead letter is replayed, in Redis and in the database at once, or answers 409
`units_gone` and changes nothing. Internal token only. In-process on the real
PostgreSQL and Redis; the replay across real processes: test_stock_heals."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from common import events
from orders_api.admission import counter
from orders_api.models import Order, Sale
from orders_api.ordering import life_cycle
from orders_api.sales.ledger import sale_ledger
from orders_api.sales.selectors import sale_remaining_in_db
from tests.orders_api.conftest import sale_create
from tests.orders_api.test_life_cycle import fulfillment_event, placed_order

pytestmark = pytest.mark.django_db(transaction=True)

AUTH: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {settings.INTERNAL_API_TOKEN}"}


def reclaim(number: str, **headers: Any) -> Any:
    return APIClient().post(f"/internal/orders/{number}/reclaim", **(headers or AUTH))


def failed_order() -> Order:
    """An order the fulfillment queue dead-lettered: its unit went back to the sale."""
    order = placed_order()
    failed = fulfillment_event(order, events.ORDER_FAILED, reason="warehouse down")
    assert life_cycle.fulfillment_event_record(raw=failed).applied
    order.refresh_from_db()
    assert order.units_released
    return order


def units_left(sale: Sale) -> tuple[int, int]:
    """(the Redis counter, the database) units left."""
    counted = counter.counter_read(slug=sale.slug)
    assert counted is not None
    return counted[0], sale_remaining_in_db(sale_id=sale.pk)


def balanced(sale: Sale) -> dict[str, Any]:
    sale.refresh_from_db()
    ledger = sale_ledger(sale=sale)
    assert ledger["balanced"]
    assert ledger["allocated"] == (
        ledger["fulfilled"]
        + ledger["in_flight"]
        + ledger["available"]
        + ledger["returned_to_shop"]
    )
    assert ledger["held_by_admissions"] in (0, None)
    return ledger


def test_a_failed_order_whose_unit_is_still_for_sale_takes_it_back_once(
    transactional_db: None,
) -> None:
    # Given a sale of 3 and an order that failed: its unit is for sale again
    sale = sale_create(units=3)
    order = failed_order()
    assert units_left(sale) == (3, 3)

    # When it reclaims its unit
    answer = reclaim(order.number)

    # Then it has it again, in Redis and in the database, and goes back to the queue
    assert answer.status_code == 200, answer.json()
    assert answer.json() == {"number": order.number, "status": "queued", "reclaimed": 1}
    assert units_left(sale) == (2, 2)
    order.refresh_from_db()
    assert (order.status, order.units_released) == ("queued", False)
    sale.refresh_from_db()
    assert (sale.units_sold, sale.units_released) == (1, 0)
    ledger = balanced(sale)
    assert (ledger["in_flight"], ledger["available"]) == (1, 2)
    assert ledger["released_by_failed_orders"] == ledger["shipped_after_release"] == 0

    # And a second reclaim changes nothing
    again = reclaim(order.number)
    assert again.status_code == 200
    assert again.json()["reclaimed"] == 0
    assert units_left(sale) == (2, 2)

    # And once fulfilled, it was never shipped after a release
    for type_ in (events.ORDER_STARTED, events.ORDER_FULFILLED):
        life_cycle.fulfillment_event_record(raw=fulfillment_event(order, type_))
    assert balanced(sale)["fulfilled"] == 1
    assert balanced(sale)["shipped_after_release"] == 0


def test_a_failed_order_whose_unit_was_sold_again_gets_409_and_nothing_changes(
    transactional_db: None,
) -> None:
    # Given a sale of 1 whose order failed, and its unit then sold to another buyer
    sale = sale_create(units=1)
    order = failed_order()
    placed_order()
    assert units_left(sale) == (0, 0)
    turned_away = counter.turned_away_count(slug=sale.slug)

    # When the failed order reclaims its unit
    answer = reclaim(order.number)

    # Then it is refused, and nothing moved: not the order, the sale nor the counter
    assert answer.status_code == 409
    assert answer.json()["error"] == "units_gone"
    assert answer.json()["reason"] == "sold again after the order failed"
    order.refresh_from_db()
    assert (order.status, order.units_released) == ("failed", True)
    assert units_left(sale) == (0, 0)
    assert counter.turned_away_count(slug=sale.slug) == turned_away
    sale.refresh_from_db()
    assert sale.units_released == 1
    assert balanced(sale)["available"] == 0


def test_a_failed_order_of_a_closed_sale_gets_409(transactional_db: None) -> None:
    # Given an order that failed, then the sale closed (its unit went to the shop)
    sale = sale_create(units=2)
    order = failed_order()
    Sale.objects.filter(pk=sale.pk).update(status=Sale.Status.CLOSED)
    counter.counter_write(slug=sale.slug, sale_id=sale.pk, remaining=0, open_=False)

    answer = reclaim(order.number)

    assert answer.status_code == 409
    assert answer.json()["reason"] == "the sale is no longer open"
    order.refresh_from_db()
    assert order.status == "failed"


def test_an_order_that_gave_nothing_back_is_left_as_it_is(sale: Sale) -> None:
    order = placed_order()

    answer = reclaim(order.number)

    assert answer.status_code == 200
    assert answer.json() == {
        "number": order.number,
        "status": "accepted",
        "reclaimed": 0,
    }
    assert units_left(sale) == (9, 9)


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"HTTP_X_NONE": "1"}, 401, "not_authenticated"),
        ({"HTTP_AUTHORIZATION": "Bearer wrong"}, 403, "forbidden"),
    ],
)
def test_the_internal_token_is_required(
    sale: Sale, headers: dict[str, str], status: int, code: str
) -> None:
    order = failed_order()

    answer = reclaim(order.number, **headers)

    assert answer.status_code == status
    assert answer.json()["error"] == code
    order.refresh_from_db()
    assert order.status == "failed"


def test_an_unknown_order_is_404(sale: Sale) -> None:
    answer = reclaim("MU-NOSUCHORDER")

    assert answer.status_code == 404
    assert answer.json()["error"] == "not_found"
