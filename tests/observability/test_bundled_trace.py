"""Sampled purchases that the relay bundles into one fulfillment message are each
still one complete trace (docs/decisions/0011-sampled-orders-bundled.md): the relay's
`outbox publish` span in each, the worker's consumer span continuing each from the
context its envelope carries, its warehouse call, the orders worker's steps.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from observability.completeness import trace_gaps
from observability.model import Trace
from observability.store import FileSpanStore
from tests.observability.conftest import (
    WAREHOUSE_HANDLING_MS,
    api_purchase,
    placed_trace,
)
from tests.support.orders_stack import OrdersStack, orders_stack
from tests.support.tracing import traced_env

pytestmark = pytest.mark.stack

PURCHASES = 3


@pytest.fixture(scope="module")
def traces(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bundled-traces")


@pytest.fixture(scope="module")
def stack(traces) -> Iterator[OrdersStack]:
    """The order path, traced; woken by an order, the relay gathers a second long,
    so that purchases made together go in one relay pass, one message."""
    env = {**traced_env(traces), "ORDERS_RELAY_GATHER_SECONDS": "1.0"}
    with orders_stack(
        "obs-bundle", env=env, warehouse_handling_ms=WAREHOUSE_HANDLING_MS
    ) as running:
        running.fulfillment_worker()
        running.sale_reopen(10)
        yield running


@pytest.fixture(scope="module")
def bundled(stack: OrdersStack, traces: Path) -> list[Trace]:
    # when three sampled purchases are made at once
    with ThreadPoolExecutor(PURCHASES) as pool:
        placed = list(pool.map(lambda _: api_purchase(stack), range(PURCHASES)))
    store = FileSpanStore(traces)
    return [placed_trace(store, purchase) for purchase, _ in placed]


def _named(trace: Trace, service: str, kind: str, name: str) -> list[str]:
    return [
        s.name
        for s in trace.spans
        if s.service == service and s.kind == kind and s.name.startswith(name)
    ]


def test_purchases_bundled_in_one_message_are_each_one_complete_trace(bundled):
    # then each purchase is a complete trace, the orders worker's steps included
    for trace in bundled:
        assert trace_gaps(trace, edge=False) == []
        assert trace.completion is not None
        assert len(_named(trace, "outbox-relay", "internal", "outbox publish")) == 1
        assert len(_named(trace, "fulfillment-worker", "consumer", "run/")) == 1
        assert len(_named(trace, "fulfillment-worker", "client", "POST")) == 1
    # and they travelled in one message: the Celery producer span is in one trace
    # only, the others continue from the contexts their envelopes carried
    producers = [
        len(_named(trace, "outbox-relay", "producer", "apply_async/"))
        for trace in bundled
    ]
    assert sorted(producers) == [0] * (PURCHASES - 1) + [1]


def test_no_span_of_one_bundled_purchase_lands_in_another_s_trace(bundled):
    # then the warehouse served each purchase once, in its own trace
    for trace in bundled:
        assert len(_named(trace, "warehouse", "server", "")) == 1
        assert len({s.trace_id for s in trace.spans}) == 1
