"""Through the real edge, in strangler mode, the visitor's trace is the purchase's.

The edge forwards a `traceparent` in the visitor's trace (edge_router/headers.py),
so the orders service, the relay, both workers and the warehouse continue the trace
id the visitor sent, whether or not the edge makes spans of its own. When it does
(its server span, with `edge.mode`, and a client span per call to an origin), that
server span is the trace's root and the orders service's span hangs from its call.
"""

from __future__ import annotations

import httpx
import pytest

from observability.model import Trace
from observability.purchase import MUSKIE_PATH, Traceparent, purchase_strangler
from observability.spans import Span
from tests.observability.conftest import placed_trace
from tests.support.edge import set_mode

pytestmark = pytest.mark.stack


def _orders_root(trace: Trace) -> Span:
    served = [
        s for s in trace.spans if s.service == "orders-api" and s.kind == "server"
    ]
    assert len(served) == 1, [s.label for s in served]
    return served[0]


def test_the_edge_keeps_the_visitors_trace_id_on_the_way_to_the_origin(edge, stack):
    # given the edge in strangler mode
    set_mode(edge, "strangler")
    # when a visitor with a trace of its own opens the sale board through the edge
    # (the Muskie page itself is static: the edge answers it, no origin is asked)
    sent = Traceparent.new()
    answer = httpx.get(
        edge.url + "/sale/muskie-casting-rod/",
        headers={"traceparent": sent.header},
        timeout=10,
    )
    # then the orders service answered, in the visitor's trace
    assert answer.status_code == 200
    assert answer.headers["X-Edge-Origin"] == "orders"
    assert answer.headers["X-Trace-Id"] == sent.trace_id


def test_a_purchase_through_the_edge_is_one_trace_from_the_edge_to_the_warehouse(
    edge, stack, store, traces_dir
):
    # given the edge in strangler mode
    set_mode(edge, "strangler")
    # when a visitor buys the Muskie rod through it, with a traceparent of its own
    purchase = purchase_strangler(edge.url, stack.orders.url)
    trace = placed_trace(store, purchase)
    # then the trace id the visitor sent runs through every process of the path
    assert trace.trace_id == purchase.trace_id
    assert {
        "orders-api",
        "outbox-relay",
        "fulfillment-worker",
        "warehouse",
        "orders-worker",
    } <= set(trace.services)
    served = _orders_root(trace)
    assert (served.http_method, served.http_target) == ("POST", MUSKIE_PATH + "buy/")
    assert served.http_status == 303
    edge_spans = [s for s in trace.spans if s.service == "edge"]
    if list(traces_dir.glob("edge-*.jsonl")):
        # the edge traces itself: its server span is the root, in strangler mode,
        # and the orders service's span is the child of the edge's call to it
        assert trace.root.service == "edge"
        assert trace.root.kind == "server"
        assert trace.root.parent_id == purchase.traceparent.span_id
        assert trace.mode == "strangler"
        call = trace.parent_of(served)
        assert call is not None
        assert (call.service, call.kind) == ("edge", "client")
        assert trace.missing_parents() == {purchase.traceparent.span_id}
    else:
        # the edge makes no span: the orders service's span is the root, its parent
        # the span id the edge put in the traceparent it forwarded (not ours)
        assert edge_spans == []
        assert trace.root == served
        assert served.parent_id != purchase.traceparent.span_id
        assert trace.missing_parents() == {served.parent_id}
    # and every span below the entry hangs from its parent by parent id
    assert set(trace.relation.values()) == {"parent"}
