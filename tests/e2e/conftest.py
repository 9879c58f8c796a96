"""The running stack for end-to-end tests: warehouse and shop under gunicorn, and
(for the tests that need the new path) the whole order path."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.support.edge import Process, edge_process, set_mode
from tests.support.orders_stack import OrdersStack, orders_stack
from tests.support.stack import shop_process, warehouse_process

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps dialling Google's hosts.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: `make browser` installs it")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


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
    with edge_process(sale_stack.shop.url, sale_stack.orders.url) as running:
        set_mode(running, "strangler")
        yield running
