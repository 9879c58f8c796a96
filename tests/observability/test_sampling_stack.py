"""The edge decides, the stack follows: through an edge that traces nothing but
purchases (TRACES_SAMPLE_RATIO=0), a page leaves no span in any process, and a
purchase is still one complete trace, from the edge to the warehouse.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from observability.completeness import trace_gaps
from observability.model import Trace
from observability.purchase import Traceparent, purchase_legacy, purchase_strangler
from observability.store import FileSpanStore
from tests.observability.conftest import Placed, placed_trace
from tests.support.edge import Process, edge_process, set_mode
from tests.support.orders_stack import OrdersStack
from tests.support.tracing import traced_env

pytestmark = pytest.mark.stack
TOURNEY = "/shop/rods/tourney-casting-rod/"


@pytest.fixture(scope="module")
def quiet_edge(stack: OrdersStack, traces_dir) -> Iterator[Process]:
    """The edge in front of the traced stack, its default ratio put to 0."""
    extra: dict[str, Any] = {**traced_env(traces_dir), "TRACES_SAMPLE_RATIO": "0"}
    # the stack's own minisite (its buy-now form), not the edge tests' stand-in
    extra["SALE_SITE_DIR"] = stack.env["SALE_SITE_DIR"]
    with edge_process(stack.shop.url, stack.orders.url, **extra) as running:
        yield running


@pytest.fixture(scope="module")
def legacy_through_quiet_edge(quiet_edge: Process, store: FileSpanStore) -> Placed:
    set_mode(quiet_edge, "legacy")
    purchase = purchase_legacy(quiet_edge.url, through_edge=True)
    return Placed(purchase, placed_trace(store, purchase))


@pytest.fixture(scope="module")
def strangler_through_quiet_edge(
    quiet_edge: Process, stack: OrdersStack, store: FileSpanStore
) -> Placed:
    set_mode(quiet_edge, "strangler")
    try:
        purchase = purchase_strangler(quiet_edge.url, stack.orders.url)
    finally:
        set_mode(quiet_edge, "legacy")
    return Placed(purchase, placed_trace(store, purchase))


def test_a_page_not_sampled_leaves_no_span_in_any_process(
    quiet_edge: Process, store: FileSpanStore, legacy_through_quiet_edge: Placed
) -> None:
    # given a visitor whose own traceparent says "sampled"
    forged = Traceparent.new()
    set_mode(quiet_edge, "legacy")
    # when it opens the Tourney page through the edge (ratio 0)
    answer = httpx.get(
        quiet_edge.url + TOURNEY, headers={"traceparent": forged.header}, timeout=10
    )
    # then the shop answered in the visitor's trace, which it names
    assert answer.status_code == 200
    assert answer.headers["x-trace-id"] == forged.trace_id
    # and once a traced purchase made after it is stored whole, no process (edge,
    # shop, PostgreSQL's client) has a span of the page's trace
    later = purchase_legacy(quiet_edge.url, through_edge=True)
    placed_trace(store, later)
    spans = store.spans(mentioning=frozenset({forged.trace_id}))
    assert [s.label for s in spans if s.trace_id == forged.trace_id] == []


@pytest.mark.parametrize(
    "placed", ["legacy_through_quiet_edge", "strangler_through_quiet_edge"]
)
def test_a_purchase_is_one_complete_trace_when_nothing_else_is_traced(
    request: pytest.FixtureRequest, placed: str
) -> None:
    # given a purchase through an edge that samples nothing but purchases
    trace: Trace = request.getfixturevalue(placed).trace
    # then its trace holds every process of its path, each under the edge
    assert trace_gaps(trace) == []
    assert trace.root.service == "edge"


def test_a_purchase_trace_missing_a_process_is_incomplete(
    strangler_through_quiet_edge: Placed,
) -> None:
    # given the strangler purchase's trace without the relay's spans
    whole = strangler_through_quiet_edge.trace
    spans = [s for s in whole.spans if s.service != "outbox-relay"]
    cut = Trace(whole.trace_id, spans)
    # then `traces sale` would count it incomplete, and say why
    gaps = trace_gaps(cut)
    assert "no outbox-relay span" in gaps
    assert any("whose parent is missing" in gap for gap in gaps)
    # and a trace that holds two purchases' edge requests is not one purchase
    entry = next(s for s in whole.spans if s.service == "edge" and s.kind == "server")
    twice = Trace(
        whole.trace_id,
        [*whole.spans, dataclasses.replace(entry, span_id="f" * 16, parent_id="")],
    )
    assert "2 edge requests in one trace" in trace_gaps(twice)
