"""Stock that heals, across real processes: a dead-lettered order's unit is sold
again and a close gives it back to the shop, units taken by a request killed before
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
