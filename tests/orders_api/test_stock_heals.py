"""Stock that heals, across real processes: a dead-lettered order's unit is sold
again and a close gives it back to the shop, a replayed dead letter ships only if it
could take its unit back (never an oversell), units taken by a request killed before
its commit come back without a restart, and while the sale is open the legacy basket
and checkout send buyers to it."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from common.harness.orders_stack import MUSKIE
from common.harness.services import ORDERS_SETTINGS, traces_quiet_env
from tests.orders_api.flood import buyers
from tests.support.orders_stack import OrdersStack, orders_stack, wait_until
from tests.support.processes import ROOT

pytestmark = pytest.mark.stack
SALE_URL = f"/sale/{MUSKIE}/"


@pytest.fixture(scope="module")
def stack() -> Iterator[OrdersStack]:
    with orders_stack("heal", env={"ORDERS_RECONCILE_SECONDS": "1"}) as running:
        yield running


def ledger(stack: OrdersStack) -> dict[str, Any]:
    figures = json.loads(stack.orders_manage("sale", "status", MUSKIE))["ledger"]
    assert figures["allocated"] == (
        figures["fulfilled"]
        + figures["in_flight"]
        + figures["available"]
        + figures["returned_to_shop"]
    )
    assert figures["balanced"]
    return dict(figures)


def remaining(stack: OrdersStack) -> int:
    answer = httpx.get(f"{stack.orders.url}/api/sales/{MUSKIE}/", timeout=10)
    return int(answer.json()["remaining"])


def failures(stack: OrdersStack, number: str) -> int:
    query = (
        "SELECT count(*) FROM orders_api_event e JOIN orders_api_order o "
        "ON o.id = e.order_id WHERE o.number = %s AND e.type = %s"
    )
    rows = stack.sql("orders", query, (number, "fulfillment.order-failed"))
    return int(rows[0][0])


def test_a_dead_lettered_order_gives_its_unit_back_once_and_the_close_returns_it(
    stack: OrdersStack,
) -> None:
    # Given a sale of 3, a worker that gives up at once, and the warehouse down
    stack.sale_reopen(3)
    shop_before = stack.shop_stock()
    worker = stack.fulfillment_worker(FULFILLMENT_MAX_RETRIES="0")
    stack.warehouse.stop()
    try:
        # When an order is dead-lettered, then replayed and dead-lettered again
        number = buyers(stack.orders.url, 1)[0].body["number"]
        wait_until(lambda: failures(stack, number) == 1, what="the order failed")
        stack.queue_manage("fulfillment", "dlq", "replay", "--all")
        wait_until(lambda: failures(stack, number) == 2, what="it failed again")
    finally:
        stack.warehouse.start()

    # Then its unit is for sale again, once: 3 left, not 2 and not 4
    wait_until(lambda: remaining(stack) == 3, what="the unit back in the counter")
    figures = ledger(stack)
    assert figures["available"] == 3
    assert figures["released_by_failed_orders"] == 1
    # And with the warehouse back, one more sells and is fulfilled
    assert [a.status for a in buyers(stack.orders.url, 1)] == [202]
    wait_until(lambda: ledger(stack)["fulfilled"] == 1, what="the order fulfilled")
    worker.stop()
    assert ledger(stack)["available"] == 2

    # When the sale closes, both unsold units go back, the failed order's included
    closed = stack.orders_manage("sale", "close", MUSKIE)
    assert "2 unsold units went back to the shop, 1 sold" in closed
    assert stack.shop_stock() == shop_before + 2
    figures = ledger(stack)
    assert (figures["allocated"], figures["returned_to_shop"]) == (3, 2)
    assert (figures["fulfilled"], figures["in_flight"], figures["available"]) == (
        1,
        0,
        0,
    )


def order_status(stack: OrdersStack, number: str) -> str:
    query = "SELECT status FROM orders_api_order WHERE number = %s"
    return str(stack.sql("orders", query, (number,))[0][0])


def open_letter(stack: OrdersStack, number: str) -> int:
    """The id of the order's open dead letter (the queue's own table)."""
    query = (
        "SELECT id FROM fulfillment_queue_deadletter "
        "WHERE order_ref = %s AND replayed_at IS NULL"
    )
    rows = stack.sql("queue", query, (number,))
    assert len(rows) == 1, rows
    return int(rows[0][0])


def an_order_dead_lettered(stack: OrdersStack, *, units: int) -> str:
    """A fresh sale of `units` whose first order failed (the warehouse was down):
    its unit is back for sale. A worker that gives up at once is left running."""
    stack.sale_reopen(units)
    stack.fulfillment_worker(FULFILLMENT_MAX_RETRIES="0")
    stack.warehouse.stop()
    try:
        number = str(buyers(stack.orders.url, 1)[0].body["number"])
        wait_until(lambda: failures(stack, number) == 1, what="the order failed")
        wait_until(lambda: remaining(stack) == units, what="its unit back for sale")
    finally:
        stack.warehouse.start()
    return number


def test_a_replayed_dead_letter_takes_its_unit_back_and_is_fulfilled_once(
    stack: OrdersStack,
) -> None:
    # Given a sale of 2 whose order failed, its unit still for sale, the warehouse up
    number = an_order_dead_lettered(stack, units=2)
    letter = open_letter(stack, number)

    # When the operator replays its dead letter
    output = stack.queue_manage("fulfillment", "dlq", "replay", str(letter))

    # Then the order took its unit back and is fulfilled, exactly once
    assert f"replayed {letter} ({number})" in output
    wait_until(lambda: order_status(stack, number) == "fulfilled", what="fulfilled")
    assert stack.warehouse_refs().count(number) == 1
    assert remaining(stack) == 1
    figures = ledger(stack)
    assert (figures["fulfilled"], figures["in_flight"], figures["available"]) == (
        1,
        0,
        1,
    )
    assert figures["shipped_after_release"] == 0
    assert figures["released_by_failed_orders"] == 0
    workers_stop(stack)


def test_a_dead_letter_whose_unit_was_sold_again_is_skipped_and_never_shipped(
    stack: OrdersStack,
) -> None:
    # Given a sale of 1 whose order failed, and its unit then sold to another buyer
    number = an_order_dead_lettered(stack, units=1)
    other = buyers(stack.orders.url, 1)[0]
    assert other.status == 202
    resold = str(other.body["number"])
    wait_until(lambda: order_status(stack, resold) == "fulfilled", what="fulfilled")
    assert remaining(stack) == 0
    letter = open_letter(stack, number)

    # When the operator replays the failed order's dead letter
    output = stack.queue_manage("fulfillment", "dlq", "replay", str(letter))

    # Then it is skipped, says why, and stays an open dead letter
    assert (
        f"skipped {letter} ({number}): units gone: sold again after the order failed"
        in output
    )
    assert "0 dead letters sent to the queue again, 1 skipped" in output
    assert open_letter(stack, number) == letter
    assert order_status(stack, number) == "failed"
    # And the warehouse never packs it: nothing oversold
    workers_stop(stack)
    sale_orders = "SELECT number FROM orders_api_order WHERE sale_id = %s"
    sale_id = ledger_sale_id(stack)
    numbers = {row[0] for row in stack.sql("orders", sale_orders, (sale_id,))}
    shipped = [ref for ref in stack.warehouse_refs() if ref in numbers]
    assert shipped == [resold]
    figures = ledger(stack)
    assert len(shipped) <= figures["allocated"] == 1
    assert figures["shipped_after_release"] == 0
    assert (figures["fulfilled"], figures["available"]) == (1, 0)


def workers_stop(stack: OrdersStack) -> None:
    for worker in stack.workers:
        worker.stop()


def ledger_sale_id(stack: OrdersStack) -> int:
    query = "SELECT id FROM orders_api_sale WHERE slug = %s AND status = 'open'"
    return int(stack.sql("orders", query, (MUSKIE,))[0][0])


CRASH = (
    "import os\n"
    "from orders_api.admission import counter\n"
    f"assert counter.counter_admit(slug={MUSKIE!r}, units=2).admitted\n"
    "os._exit(9)  # killed between the admission and the order's commit\n"
)


def test_units_admitted_by_a_request_killed_before_its_commit_come_back(
    stack: OrdersStack,
) -> None:
    # Given an open sale of 5, the relay running
    stack.sale_reopen(5)
    assert remaining(stack) == 5

    # When a process takes 2 units from the counter and dies before any order
    crash = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", CRASH],
        cwd=ROOT,
        env={**traces_quiet_env(stack.env), "DJANGO_SETTINGS_MODULE": ORDERS_SETTINGS},
        check=False,
    )
    assert crash.returncode == 9

    # Then the running relay gives them back (no restart), and the ledger agrees
    wait_until(lambda: remaining(stack) == 5, timeout=20, what="the units back")
    figures = ledger(stack)
    assert (figures["available"], figures["counter"]) == (5, 5)
    assert figures["held_by_admissions"] == 0
    assert [a.status for a in buyers(stack.orders.url, 6)].count(202) == 5


def _csrf(page: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert match, "the form carries a CSRF token"
    return match.group(1)


def basket_add(visitor: httpx.Client, sku: str) -> httpx.Response:
    token = _csrf(visitor.get("/shop/rods/tourney-casting-rod/").text)
    return visitor.post(
        "/basket/add/",
        data={"csrfmiddlewaretoken": token, "product": sku, "quantity": "1"},
    )


def checkout(visitor: httpx.Client) -> httpx.Response:
    token = _csrf(visitor.get("/basket/checkout").text)
    return visitor.post(
        "/basket/checkout",
        data={"csrfmiddlewaretoken": token, "email": "legacy@example.com"},
    )


def test_while_a_sale_is_open_the_legacy_basket_and_checkout_send_buyers_to_it(
    stack: OrdersStack,
) -> None:
    url = stack.shop.url
    with httpx.Client(base_url=url) as early, httpx.Client(base_url=url) as buyer:
        # Given a Muskie rod in a basket from before the sale, and the sale open
        with contextlib.suppress(RuntimeError):  # none open
            stack.orders_manage("sale", "close", MUSKIE)
        assert basket_add(early, "ROD-MUSKIE").status_code == 303
        stack.sale_reopen(5)
        assert stack.shop_stock() > 0  # the shop kept some: they must not sell here

        # When a buyer adds the Muskie rod, or the early basket checks out
        added, paid = basket_add(buyer, "ROD-MUSKIE"), checkout(early)

        # Then both are refused with a message pointing to the sale
        for answer in (added, paid):
            assert answer.status_code == 409
            assert f"buy it at {SALE_URL}" in answer.text
        # while the Tourney rod still sells in the legacy shop
        assert basket_add(buyer, "ROD-TOURNEY").status_code == 303
        assert checkout(buyer).status_code == 303

        # And after the close, the Muskie rod sells in the legacy shop again
        stack.orders_manage("sale", "close", MUSKIE)
        answer = checkout(early)
        assert answer.status_code == 303, answer.text
        assert basket_add(buyer, "ROD-MUSKIE").status_code == 303
