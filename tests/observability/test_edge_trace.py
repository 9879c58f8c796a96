"""A purchase through the real edge is ONE trace: edge → shop → warehouse.

The edge's server span (its ASGI instrumentation) continues the visitor's
traceparent; the edge makes the client span under it (edge_router/tracing.py, not
the aiohttp instrumentation) and sends that span's context to the shop, so the
shop's Django span hangs from the edge's client span, and the warehouse's from the
shop's httpx span, all by parent id.
A malformed or hostile traceparent starts a new trace at the edge, and the answers
the edge makes itself name their trace in X-Trace-Id too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from observability.model import Trace
from observability.purchase import MUSKIE_PATH, Traceparent, purchase_legacy
from observability.spans import Span
from observability.store import FileSpanStore, trace_wait
from tests.observability.conftest import Placed
from tests.support.edge import Process, edge_process
from tests.support.processes import RunningService, free_port
from tests.support.tracing import traced_env

HEX_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture(scope="module")
def edge(traces_dir, shop: RunningService) -> Iterator[Process]:
    """The edge in legacy mode in front of the traced shop, writing its spans too."""
    orders = f"http://127.0.0.1:{free_port()}"  # not called in legacy mode
    extra: dict[str, Any] = traced_env(traces_dir)
    with edge_process(shop.url, orders, **extra) as running:
        yield running


@pytest.fixture(scope="module")
def through_edge(edge: Process, store: FileSpanStore) -> Placed:
    purchase = purchase_legacy(edge.url)
    trace = trace_wait(
        store,
        purchase.trace_id,
        complete=lambda t: (
            t.missing_parents() <= {purchase.traceparent.span_id}
            and t.fulfilled_ns is not None
            and "edge" in t.services
        ),
    )
    return Placed(purchase, trace)


def _only(spans: list[Span]) -> Span:
    assert len(spans) == 1, [s.label for s in spans]
    return spans[0]


def _server(trace: Trace, service: str) -> Span:
    return _only(
        [s for s in trace.spans if s.service == service and s.kind == "server"]
    )


def _child(trace: Trace, parent: Span, **wanted: str) -> Span:
    return _only(
        [
            s
            for s in trace.children[parent.span_id]
            if all(getattr(s, k) == v for k, v in wanted.items())
        ]
    )


def test_the_purchase_through_the_edge_is_one_trace_rooted_in_the_edge(
    through_edge: Placed,
) -> None:
    trace = through_edge.trace
    sent = through_edge.purchase.traceparent
    # then the trace is the one our traceparent named, with one root: the edge's span
    assert trace.trace_id == sent.trace_id
    assert trace.roots == [_server(trace, "edge")]
    # whose parent is the span id we sent, the only parent not in the trace
    assert trace.root.parent_id == sent.span_id
    assert trace.missing_parents() == {sent.span_id}
    # and every other span hangs from it by parent id
    assert set(trace.relation.values()) == {"parent"}
    assert len(trace.relation) == len(trace.spans) - 1
    assert set(trace.services) == {"edge", "shop", "warehouse"}


def test_edge_server_then_edge_client_then_shop_then_warehouse(
    through_edge: Placed,
) -> None:
    trace = through_edge.trace
    buy = MUSKIE_PATH + "buy/"
    # the edge's server span: the visitor's POST, answered with the shop's 303
    served = _server(trace, "edge")
    assert served.http_method == "POST"
    assert served.http_target == buy
    assert served.http_status == 303
    # its only child: the edge's call to the shop, a client span
    call = _only(trace.children[served.span_id])
    assert (call.service, call.kind) == ("edge", "client")
    assert call.scope == "edge_router.tracing"
    assert call.http_method == "POST"
    assert call.http_target == buy
    assert call.http_status == 303
    # the shop's Django span is the call's only child: the traceparent the shop got
    # named the edge's client span, not the visitor's span
    shop = _only(trace.children[call.span_id])
    assert shop == _server(trace, "shop")
    assert shop.scope == "common.tracing.django"
    assert shop.http_target == buy
    # and the warehouse answered under the shop's httpx call
    fulfil = _child(
        trace, shop, kind="client", service="shop", http_target="/fulfilments/"
    )
    warehouse = _only(trace.children[fulfil.span_id])
    assert warehouse == _server(trace, "warehouse")
    assert warehouse.http_status == 201
    # each inside its caller
    for outer, inner in [(served, call), (call, shop), (shop, fulfil)]:
        assert outer.start_ns <= inner.start_ns <= inner.end_ns <= outer.end_ns


def test_the_edge_span_says_what_served_the_request(through_edge: Placed) -> None:
    trace = through_edge.trace
    served = _server(trace, "edge")
    assert served.attributes["edge.mode"] == "legacy"
    assert served.attributes["edge.route"] == "muskie-buy"
    assert served.attributes["edge.origin"] == "shop"
    assert trace.mode == "legacy"
    # named for the edge; the mode, which changes at run time, is not on the resource
    assert served.resource["service.name"] == "edge"
    assert "edge.mode" not in served.resource
    # and no span for each ASGI message: server and client spans only
    assert {s.kind for s in trace.spans if s.service == "edge"} == {"server", "client"}


def test_the_answer_names_the_visitors_trace_once(edge: Process) -> None:
    sent = Traceparent.new()
    answer = httpx.get(edge.url + "/shop/", headers={"traceparent": sent.header})
    assert answer.status_code == 200
    # the shop's X-Trace-Id, passed on: the edge adds none of its own
    assert answer.headers.get_list("x-trace-id") == [sent.trace_id]


HOSTILE = [
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # zero trace id
    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # zero span id
    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # forbidden version
    "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",  # upper case
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",  # no flags
    "00-zzf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # not hex
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-" + "x" * 6000,  # long
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01;"
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  # two in one
]


@pytest.mark.parametrize("traceparent", HOSTILE, ids=range(len(HOSTILE)))
def test_a_hostile_traceparent_starts_a_new_trace_at_the_edge(
    edge: Process, store: FileSpanStore, traceparent: str
) -> None:
    # given a visitor whose traceparent is malformed, with a tracestate to match
    headers = {"traceparent": traceparent, "tracestate": "evil=" + "y" * 600}
    # when it asks for a page through the edge
    answer = httpx.get(edge.url + "/shop/", headers=headers)
    # then it gets the page, in a new trace the edge started
    assert answer.status_code == 200
    trace_id = answer.headers["x-trace-id"]
    assert HEX_TRACE_ID.match(trace_id)
    assert trace_id not in traceparent.lower()
    trace = trace_wait(
        store,
        trace_id,
        complete=lambda t: not t.missing_parents() and "shop" in t.services,
    )
    # rooted in the edge's server span, which has no parent
    served = _server(trace, "edge")
    assert trace.roots == [served]
    assert served.parent_id == ""
    # and the shop continued the edge's trace, with none of the visitor's state
    shop = _server(trace, "shop")
    call = trace.parent_of(shop)
    assert call is not None
    assert (call.service, call.kind) == ("edge", "client")
    assert shop.trace_state == ""


def test_an_answer_the_edge_makes_itself_names_its_trace(
    edge: Process, store: FileSpanStore
) -> None:
    # given a buy-now POST over the behaviour's 16 KiB body limit
    sent = Traceparent.new()
    answer = httpx.post(
        edge.url + MUSKIE_PATH + "buy/",
        content=b"quantity=1&" + b"x" * 20_000,
        headers={"traceparent": sent.header},
    )
    # then the edge refuses it itself, naming the visitor's trace
    assert answer.status_code == 413
    assert answer.headers["x-trace-id"] == sent.trace_id
    # and the trace holds the edge's server span alone: no call to the shop
    trace = trace_wait(store, sent.trace_id, complete=lambda t: bool(t.spans))
    served = _only(trace.spans)
    assert (served.service, served.kind) == ("edge", "server")
    assert served.http_status == 413
    assert served.attributes["edge.route"] == "muskie-buy"


def test_a_request_not_traced_makes_no_client_span_either(
    edge: Process, store: FileSpanStore
) -> None:
    # given a static file, which is not traced (OTEL_PYTHON_DJANGO_EXCLUDED_URLS)
    quiet, later = Traceparent.new(), Traceparent.new()
    # (one connection: one edge worker, whose spans are written in order)
    with httpx.Client(base_url=edge.url) as visitor:
        answer = visitor.get(
            "/static/shop/img/logo.svg", headers={"traceparent": quiet.header}
        )
        assert answer.status_code == 200
        # when a traced request after it has been written by that worker
        visitor.get("/shop/", headers={"traceparent": later.header})
    trace_wait(store, later.trace_id, complete=lambda t: "edge" in t.services)
    # then the static file left no span: no server span, and no client span that
    # would be a trace of its own
    assert not [s for s in store.spans() if s.trace_id == quiet.trace_id]
    assert not [s for s in store.spans() if s.http_target.startswith("/static/")]
