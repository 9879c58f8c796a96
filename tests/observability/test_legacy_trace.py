"""A legacy purchase through the real shop and warehouse is ONE connected trace.

shop (Django server span) → its psycopg and Redis spans, and the httpx client span
→ the warehouse's server span, a child of that client span → the warehouse's own
psycopg spans. Every span is a child by parent id; none is left over.
"""

from __future__ import annotations

from observability.model import Trace
from observability.spans import Span
from tests.support.processes import scoped


def _only(spans: list[Span]) -> Span:
    assert len(spans) == 1, [s.label for s in spans]
    return spans[0]


def _shop_root(trace: Trace) -> Span:
    return _only([s for s in trace.spans if s.service == "shop" and s.kind == "server"])


def test_the_purchase_is_one_trace_rooted_in_the_shop_under_our_traceparent(legacy):
    trace = legacy.trace
    # then the trace is the one our traceparent named, with a single root
    assert trace.trace_id == legacy.purchase.trace_id
    assert trace.roots == [_shop_root(trace)]
    # whose parent is the span id we sent, the only parent not in the trace
    assert trace.root.parent_id == legacy.purchase.traceparent.span_id
    assert trace.missing_parents() == {legacy.purchase.traceparent.span_id}
    # and every other span hangs from it by parent id (no link needed)
    assert set(trace.relation.values()) == {"parent"}
    assert len(trace.relation) == len(trace.spans) - 1


def test_the_shop_span_is_the_django_view_and_its_children_are_db_redis_and_httpx(
    legacy,
):
    trace = legacy.trace
    root = _shop_root(trace)
    assert root.scope == "common.tracing.django"
    assert root.http_method == "POST"
    assert root.http_target == "/shop/rods/muskie-casting-rod/buy/"
    assert root.http_status == 303
    children = trace.children[root.span_id]
    scopes = {s.scope.rsplit(".", 1)[-1] for s in children}
    assert scopes == {"psycopg", "redis", "httpx"}
    db = [s for s in children if s.db_system == "postgresql"]
    statements = " ".join(str(s.attribute("db.statement")) for s in db)
    # the stock is locked, taken and the order written, all traced
    assert "FOR UPDATE" in statements
    assert 'INSERT INTO "shop_order"' in statements
    assert 'UPDATE "shop_product"' in statements
    assert all(s.kind == "client" and s.service == "shop" for s in children)


def test_the_warehouse_server_span_is_the_child_of_the_shops_httpx_span(legacy):
    trace = legacy.trace
    root = _shop_root(trace)
    call = _only([s for s in trace.children[root.span_id] if s.scope.endswith("httpx")])
    assert call.kind == "client"
    assert call.http_method == "POST"
    assert call.http_target == "/fulfilments/"
    # the warehouse answered in the same trace, as the call's only child
    served = _only(trace.children[call.span_id])
    assert served.service == "warehouse"
    assert served.kind == "server"
    assert served.parent_id == call.span_id
    assert served.http_target == "/fulfilments/"
    assert served.http_status == 201
    # and it ran inside the call
    assert call.start_ns <= served.start_ns <= served.end_ns <= call.end_ns


def test_the_warehouse_writes_its_own_db_spans_under_its_server_span(legacy, stack):
    trace = legacy.trace
    served = _only(
        [s for s in trace.spans if s.service == "warehouse" and s.kind == "server"]
    )
    db = trace.children[served.span_id]
    assert db
    assert {s.db_system for s in db} == {"postgresql"}
    assert all(s.service == "warehouse" for s in db)
    assert any(
        'INSERT INTO "warehouse_fulfillment"' in str(s.attribute("db.statement"))
        for s in db
    )
    # the warehouse's database, not the shop's
    assert {s.attribute("db.name") for s in db} == {
        scoped(stack.databases["warehouse"])
    }


def test_the_processes_name_themselves_in_their_resource(legacy):
    trace = legacy.trace
    assert set(trace.services) == {"shop", "warehouse"}
    for span in trace.spans:
        assert span.resource["service.name"] == span.service
        assert span.resource["deployment.environment"] == "demo"
        assert span.resource["service.instance.id"]
        assert "edge.mode" not in span.resource
    # one instance id per process: the shop's worker and the warehouse differ
    instances = {s.service: s.resource["service.instance.id"] for s in trace.spans}
    assert instances["shop"] != instances["warehouse"]
