"""A sale's life cycle against the real shop: `sale open` takes the units from the
shop's stock, `sale close` gives the unsold ones back, and a sale left half-open by
a `sale open` killed mid-way is resumed without taking the stock twice."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest

from common.harness.orders_stack import MUSKIE
from common.harness.services import ORDERS_SETTINGS, traces_quiet_env
from tests.orders_api.flood import buyers
from tests.support.orders_stack import OrdersStack, orders_stack, wait_until
from tests.support.processes import ROOT, database_url

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def stack() -> Iterator[OrdersStack]:
    with orders_stack("saleopen") as running:
        yield running


def sales(stack: OrdersStack) -> list[tuple[str, int, int]]:
    """(status, units allocated, units returned) of every sale, oldest first."""
    rows = stack.sql(
        "orders",
        "SELECT status, units_allocated, units_returned FROM orders_api_sale "
        "ORDER BY created_at",
    )
    return [(str(r[0]), int(r[1]), int(r[2])) for r in rows]


def lock_waits(stack: OrdersStack) -> int:
    """Sessions of the shop's database waiting on a lock (read outside any
    transaction: pg_stat_activity is a snapshot within one)."""
    with psycopg.connect(database_url(stack.databases["shop"]), autocommit=True) as db:
        row = db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock'"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_open_takes_the_units_and_close_gives_the_unsold_back(
    stack: OrdersStack,
) -> None:
    # Given the shop's stock and no sale
    assert stack.sql("orders", "SELECT count(*) FROM orders_api_sale")[0][0] == 0
    stock = stack.shop_stock()
    assert stock >= 10

    # When a sale of 10 opens, then it took 10 from the shop
    opened = stack.orders_manage("sale", "open", MUSKIE, "--units", "10")
    assert "sale open with 10 units" in opened
    assert stack.shop_stock() == stock - 10
    # and opening it again changes nothing: refused, or a no-op with --unless-open
    with pytest.raises(RuntimeError, match="already open"):
        stack.orders_manage("sale", "open", MUSKIE, "--units", "10")
    again = stack.orders_manage(
        "sale", "open", MUSKIE, "--units", "10", "--unless-open"
    )
    assert "already open; nothing done" in again
    assert stack.shop_stock() == stock - 10

    # When 3 units sell and the sale closes
    assert [a.status for a in buyers(stack.orders.url, 3)] == [202] * 3
    closed = stack.orders_manage("sale", "close", MUSKIE)

    # Then the 7 unsold went back to the shop, and the sale says so
    assert "7 unsold units went back to the shop, 3 sold" in closed
    assert stack.shop_stock() == stock - 3
    assert sales(stack)[-1] == ("closed", 3, 7)
    # and no more orders are taken
    assert {a.status for a in buyers(stack.orders.url, 1)} == {409}


def test_a_sale_left_half_open_is_resumed_without_taking_the_stock_twice(
    stack: OrdersStack,
) -> None:
    stock = stack.shop_stock()
    before = len(sales(stack))
    # Given the shop's Muskie row locked, so a stock transfer waits on it
    with psycopg.connect(database_url(stack.databases["shop"])) as shop_db:
        shop_db.execute(
            "SELECT 1 FROM shop_product WHERE sku = 'ROD-MUSKIE' FOR UPDATE"
        )
        # When `sale open` has created its sale and asked the shop for the units
        opening = subprocess.Popen(
            [sys.executable, "manage.py", "sale", "open", MUSKIE, "--units", "5"],
            cwd=ROOT,
            env={
                **traces_quiet_env(stack.env),
                "DJANGO_SETTINGS_MODULE": ORDERS_SETTINGS,
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(
                lambda: lock_waits(stack) == 1,
                what="the shop's transfer waiting on the locked row",
            )
            # and is killed there (SIGKILL), before it could mark the sale open
            opening.kill()
        finally:
            opening.kill()
            opening.wait()
        shop_db.rollback()
    # then the shop still carries the transfer out: it took the 5 units
    wait_until(lambda: stack.shop_stock() == stock - 5, what="the shop's transfer")
    assert sales(stack)[before:] == [("opening", 0, 0)]
    assert {a.status for a in buyers(stack.orders.url, 1)} == {409}

    # When the operator runs it again (as `make demo` does, with --unless-open)
    resumed = stack.orders_manage(
        "sale", "open", MUSKIE, "--units", "5", "--unless-open"
    )

    # Then the same sale opens with its 5 units, and the shop gave them only once
    assert "sale open with 5 units" in resumed
    assert sales(stack)[before:] == [("open", 5, 0)]
    assert stack.shop_stock() == stock - 5
    assert [a.status for a in buyers(stack.orders.url, 1)] == [202]
