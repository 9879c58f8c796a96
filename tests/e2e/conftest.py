"""The running stack for end-to-end tests: warehouse and shop under gunicorn, and
(for the tests that need the new path) the whole order path."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.support.browser import chromium
from tests.support.edge import Process, edge_process, set_mode
from tests.support.orders_stack import OrdersStack, orders_stack
from tests.support.stack import shop_process, warehouse_process


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as running:
        yield running


@pytest.fixture(scope="session")
def warehouse():
    with warehouse_process("e2e_fulfillment", capacity=8, handling_ms=50) as service:
        yield service


@pytest.fixture(scope="session")
def shop(warehouse):
    with shop_process("e2e_shop", warehouse_url=warehouse.url) as service:
        yield service


@pytest.fixture(scope="session")
def sale_stack() -> Iterator[OrdersStack]:
    """Every process of the order path, a fulfillment worker and an open sale."""
    with orders_stack("e2e") as stack:
        stack.fulfillment_worker()
        stack.sale_reopen(40)
        yield stack


@pytest.fixture(scope="session")
def strangler_edge(sale_stack: OrdersStack) -> Iterator[Process]:
    """The edge in strangler mode in front of the order path's shop and orders."""
    with edge_process(
        sale_stack.shop.url,
        sale_stack.orders.url,
        SALE_SITE_DIR=sale_stack.env["SALE_SITE_DIR"],
    ) as running:
        set_mode(running, "strangler")
        yield running
