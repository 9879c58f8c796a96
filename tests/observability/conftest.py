"""The traced stack for the trace tests, started once: warehouse, shop, orders service,
outbox relay, orders worker and fulfillment worker as real processes (the order path's
test helpers), every one writing its spans to a directory of this session's own; the
edge in front of them when a test asks for it. And one purchase per path in it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from observability.model import Trace
from observability.purchase import (
    Purchase,
    Traceparent,
    purchase_legacy,
    purchase_trace_complete,
)
from observability.store import FileSpanStore, trace_wait
from tests.support.edge import Process, edge_process
from tests.support.orders_stack import OrdersStack, orders_stack, wait_until
from tests.support.processes import RunningService
from tests.support.tracing import traced_env

# Enough for every purchase of the session, from the shop's 100 Muskie rods.
SALE_UNITS = 40
# The demo's pick-and-pack time: the report's screenshot shows the real trade (the
# legacy buyer waits for it, the strangler buyer does not).
WAREHOUSE_HANDLING_MS = 50


@dataclass(frozen=True)
class Placed:
    purchase: Purchase
    trace: Trace


@dataclass(frozen=True)
class ApiPlaced(Placed):
    """A purchase through the orders JSON API: its 202 answer too."""

    answer: httpx.Response


@pytest.fixture(scope="session")
def traces_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("traces")


@pytest.fixture(scope="session")
def store(traces_dir) -> FileSpanStore:
    return FileSpanStore(traces_dir)


@pytest.fixture(scope="session")
def stack(traces_dir) -> Iterator[OrdersStack]:
    """Every process of both paths but the edge, traced, with a Muskie sale open."""
    with orders_stack(
        "obs",
        env=traced_env(traces_dir),
        warehouse_handling_ms=WAREHOUSE_HANDLING_MS,
    ) as running:
        running.fulfillment_worker()
        running.sale_reopen(SALE_UNITS)
        yield running


@pytest.fixture(scope="session")
def shop(stack) -> RunningService:
    return stack.shop


@pytest.fixture(scope="session")
def edge(stack, traces_dir) -> Iterator[Process]:
    """The edge (2 workers, legacy mode to start with) in front of the shop and the
    orders service, with the same tracing environment as every other process."""
    extra: dict[str, Any] = traced_env(traces_dir)
    extra["SALE_SITE_DIR"] = stack.env["SALE_SITE_DIR"]
    with edge_process(stack.shop.url, stack.orders.url, **extra) as running:
        yield running


def placed_trace(store: FileSpanStore, purchase: Purchase) -> Trace:
    """The purchase's trace once every process has flushed its part."""
    return trace_wait(
        store,
        purchase.trace_id,
        complete=lambda trace: purchase_trace_complete(trace, purchase),
    )


def legacy_placed(shop: RunningService, store: FileSpanStore) -> Placed:
    """One legacy Muskie purchase, straight to the shop, and its whole trace."""
    purchase = purchase_legacy(shop.url)
    return Placed(purchase, placed_trace(store, purchase))


def api_placed(stack: OrdersStack, store: FileSpanStore) -> ApiPlaced:
    """One strangler purchase through the orders JSON API, with a traceparent of
    ours, followed until the orders service says it is fulfilled; and its trace."""
    purchase, answer = api_purchase(stack)
    return ApiPlaced(purchase, placed_trace(store, purchase), answer)


def api_purchase(stack: OrdersStack) -> tuple[Purchase, httpx.Response]:
    """One strangler purchase through the orders JSON API, with a traceparent of
    ours, followed until the orders service says it is fulfilled."""
    traceparent = Traceparent.new()
    answer = httpx.post(
        stack.orders.url + "/api/orders/",
        json={"sku": "ROD-MUSKIE", "quantity": 1, "email": "traces@example.com"},
        headers={
            "Idempotency-Key": str(uuid.uuid4()),
            "traceparent": traceparent.header,
        },
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    status_url = stack.orders.url + answer.json()["status_url"]
    wait_until(
        lambda: httpx.get(status_url, timeout=10).json()["status"] == "fulfilled",
        timeout=60,
        what=f"order {answer.json()['number']} fulfilled",
    )
    purchase = Purchase(
        "strangler", stack.orders.url, traceparent, 202, status_url, "fulfilled"
    )
    return purchase, answer


@pytest.fixture(scope="session")
def legacy(shop, store) -> Placed:
    return legacy_placed(shop, store)


@pytest.fixture(scope="session")
def strangler(stack, store) -> ApiPlaced:
    return api_placed(stack, store)
