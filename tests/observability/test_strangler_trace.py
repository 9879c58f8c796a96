"""A strangler purchase through the real order path is ONE connected trace.

orders-api (Django server span: Redis admission, the order and its outbox event in
PostgreSQL) → outbox-relay (`outbox publish`, a child through the context stored in
the outbox row; the Celery producer span inside it) → fulfillment-worker (the
consumer span, a child through the message; its httpx call) → warehouse (server span
and its PostgreSQL) and, through the events the worker sends back, orders-worker
(applying `order-started` and `order-fulfilled`; the websocket push). Every relation
is a parent id: no link on a first delivery.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from observability.model import Trace
from observability.service_map import service_map
from observability.spans import Span
from observability.store import trace_wait
from tests.observability.conftest import ApiPlaced, api_placed
from tests.support.orders_stack import OrdersStack
from tests.support.processes import scoped

pytestmark = pytest.mark.stack

ORDER_PATH_SERVICES = {
    "orders-api",
    "outbox-relay",
    "fulfillment-worker",
    "warehouse",
    "orders-worker",
}


def _only(spans: list[Span]) -> Span:
    assert len(spans) == 1, [f"{s.service}: {s.label}" for s in spans]
    return spans[0]


def _spans(trace: Trace, service: str, kind: str, name: str = "") -> list[Span]:
    return [
        s
        for s in trace.spans
        if s.service == service and s.kind == kind and s.name.startswith(name)
    ]


def _children(trace: Trace, span: Span, keep: Callable[[Span], bool]) -> list[Span]:
    return [kid for kid in trace.children[span.span_id] if keep(kid)]


def test_the_purchase_is_one_trace_rooted_in_the_orders_api_under_our_traceparent(
    strangler: ApiPlaced,
):
    trace = strangler.trace
    # then the answer named our trace, and the trace is the one our traceparent named
    assert strangler.answer.headers["X-Trace-Id"] == strangler.purchase.trace_id
    assert trace.trace_id == strangler.purchase.trace_id
    root = _only(_spans(trace, "orders-api", "server"))
    assert trace.roots == [root]
    assert root.parent_id == strangler.purchase.traceparent.span_id
    assert trace.missing_parents() == {strangler.purchase.traceparent.span_id}
    # and every other span hangs from it by parent id, across five processes
    assert set(trace.relation.values()) == {"parent"}
    assert len(trace.relation) == len(trace.spans) - 1
    assert set(trace.services) == ORDER_PATH_SERVICES
    for span in trace.spans:
        assert span.resource["service.name"] == span.service
    assert trace.path == "strangler"


def test_the_accept_request_admits_in_redis_and_writes_order_and_outbox_event(
    strangler: ApiPlaced,
):
    trace = strangler.trace
    root = _only(_spans(trace, "orders-api", "server"))
    # placed on the event loop, ahead of Django (orders_api/web/fast_accept.py),
    # under the name and route Django's server span gives the view
    assert root.scope == "orders_api.web.lane"
    assert root.attribute("orders.lane") == "event-loop"
    assert root.name == "POST api/orders/"
    assert root.attribute("http.route") == "api/orders/"
    assert (root.http_method, root.http_target) == ("POST", "/api/orders/")
    assert root.http_status == 202
    children = trace.children[root.span_id]
    redis = [s for s in children if s.db_system == "redis"]
    db = [s for s in children if s.db_system == "postgresql"]
    # the admission is one Lua script run in Redis by the ASGI fast lane, before
    # the span was made (so not in the trace, though inside the span's time; the
    # span says where), and the request does not ask Redis again
    assert root.attribute("orders.admission") == "fast-lane"
    assert not any(s.name == "EVALSHA" for s in redis)
    statements = " ".join(str(s.attribute("db.statement")) for s in db)
    assert 'INSERT INTO "orders_api_order"' in statements
    assert 'INSERT INTO "orders_api_event"' in statements
    assert all(s.service == "orders-api" and s.kind == "client" for s in redis + db)


def test_the_relay_publishes_in_the_trace_the_accept_request_stored(
    strangler: ApiPlaced,
):
    trace = strangler.trace
    root = _only(_spans(trace, "orders-api", "server"))
    publish = _only(_spans(trace, "outbox-relay", "internal", "outbox publish"))
    # the relay's span is the accept request's child, through the outbox row, and
    # began once the event was written (woken at the commit, maybe before the answer)
    assert publish.parent_id == root.span_id
    written = _only(
        [
            s
            for s in trace.children[root.span_id]
            if 'INSERT INTO "orders_api_event"' in str(s.attribute("db.statement"))
        ]
    )
    assert publish.start_ns >= written.end_ns
    assert publish.attributes["orders.event.type"] == "orders.order-accepted"
    assert publish.attributes["orders.event.publish_count"] == 1
    # and the Celery producer span inside it sends the accepted order
    producer = _only(
        _children(trace, publish, lambda s: s.kind == "producer"),
    )
    assert producer.name == "apply_async/fulfillment.handle_order_accepted"
    # and the Redis call that carried the message is not recorded (the publish's
    # spans cover its time)
    assert not _children(trace, publish, lambda s: s.kind == "client")
    # and the relay pushed "queued" to the order's websocket group in the same trace
    push = _only(_spans(trace, "outbox-relay", "producer", "orders.push"))
    assert push.parent_id == root.span_id
    # (its Redis PUBLISH not recorded: the push's span covers it)
    assert not trace.children[push.span_id]


def test_the_fulfillment_task_and_its_warehouse_call_are_in_the_trace(
    strangler: ApiPlaced, stack: OrdersStack
):
    trace = strangler.trace
    producer = _only(_spans(trace, "outbox-relay", "producer", "apply_async/"))
    task = _only(_spans(trace, "fulfillment-worker", "consumer"))
    # the task is the producer's child, through the message's headers
    assert task.parent_id == producer.span_id
    assert task.name == "run/fulfillment.handle_order_accepted"
    assert task.start_ns >= producer.end_ns
    # its httpx call to the warehouse, and the warehouse's server span under it
    call = _only(_children(trace, task, lambda s: s.scope.endswith("httpx")))
    assert (call.kind, call.http_method, call.http_target) == (
        "client",
        "POST",
        "/fulfilments/",
    )
    served = _only(trace.children[call.span_id])
    assert (served.service, served.kind, served.http_status) == (
        "warehouse",
        "server",
        201,
    )
    assert call.start_ns <= served.start_ns <= served.end_ns <= call.end_ns
    # with the warehouse's own queries, in its own database
    db = trace.children[served.span_id]
    assert {s.db_system for s in db} == {"postgresql"}
    assert {s.attribute("db.name") for s in db} == {
        scoped(stack.databases["warehouse"])
    }
    assert any(
        'INSERT INTO "warehouse_fulfillment"' in str(s.attribute("db.statement"))
        for s in db
    )


def test_the_orders_worker_applies_the_fulfilled_event_in_the_trace(
    strangler: ApiPlaced,
):
    trace = strangler.trace
    task = _only(_spans(trace, "fulfillment-worker", "consumer"))
    applied = _spans(trace, "orders-worker", "consumer", "run/orders.")
    by_type = {s.attributes["orders.event.type"]: s for s in applied}
    # both events the fulfillment worker sent came back through the queue
    assert set(by_type) == {"fulfillment.order-started", "fulfillment.order-fulfilled"}
    fulfilled = by_type["fulfillment.order-fulfilled"]
    assert fulfilled.attributes["orders.event.outcome"] == "applied"
    sent = trace.parent_of(fulfilled)
    assert sent is not None
    assert (sent.service, sent.kind) == ("fulfillment-worker", "producer")
    assert trace.parent_of(sent) == task
    # after the warehouse answered
    served = _only(_spans(trace, "warehouse", "server"))
    assert fulfilled.start_ns >= served.end_ns
    # writing the status in PostgreSQL and pushing it to the order's websocket
    kids = trace.children[fulfilled.span_id]
    assert any(
        'UPDATE "orders_api_order"' in str(s.attribute("db.statement")) for s in kids
    )
    push = _only([s for s in kids if s.name == "orders.push"])
    assert push.kind == "producer"
    assert push.attributes["messaging.destination.name"].startswith("order.")


def test_where_the_time_went_answer_outbox_queue_worker_warehouse(
    strangler: ApiPlaced,
):
    trace = strangler.trace
    root = _only(_spans(trace, "orders-api", "server"))
    served = _only(_spans(trace, "warehouse", "server"))
    times = trace.segment_times()
    # the purchase was complete when the orders worker recorded it fulfilled: the
    # segments add up to that, from the click (work beside it may run on after)
    done = trace.completion
    assert done is not None
    assert done.service == "orders-worker"
    assert done.attributes["orders.event.type"] == "fulfillment.order-fulfilled"
    assert trace.completed_ns == done.end_ns - root.start_ns <= trace.duration_ns
    assert sum(times.values()) == trace.completed_ns
    assert sum(trace.critical_path_by_service().values()) == trace.completed_ns
    # the customer waited for the accept only; the warehouse came later
    assert trace.customer_latency_ns == root.duration_ns
    assert trace.fulfilled_ns == served.end_ns - root.start_ns
    assert trace.fulfilled_ns > trace.customer_latency_ns
    # the accept's own work, the outbox, the queue, the workers and the warehouse
    for segment in ("view", "db", "redis", "outbox", "queue", "worker", "warehouse"):
        assert times[segment] > 0, (segment, times)
    assert times["edge"] == 0  # no edge in front of this one
    # the outbox: any wait for the relay after the answer, and the relay's publish
    publish = _only(_spans(trace, "outbox-relay", "internal", "outbox publish"))
    assert times["outbox"] >= max(0, publish.start_ns - root.end_ns)
    # and the fulfillment task waited for the warehouse, not for the orders worker
    # applying the `order-started` event it sent first (that was handed over)
    call = _only(_spans(trace, "fulfillment-worker", "client", "POST"))
    assert times["warehouse"] == call.duration_ns
    # and the service map draws the hand-overs as asynchronous, the calls as calls
    edges = {(e.source, e.target): e for e in service_map(trace).edges}
    assert not edges["client", "orders-api"].asynchronous
    for handed in (
        ("orders-api", "outbox-relay"),
        ("outbox-relay", "fulfillment-worker"),
        ("fulfillment-worker", "orders-worker"),
    ):
        assert edges[handed].asynchronous, handed
    assert not edges["fulfillment-worker", "warehouse"].asynchronous
    assert edges["fulfillment-worker", "warehouse"].count == 1


def test_the_order_keeps_its_trace_id_and_the_status_page_shows_it(
    strangler: ApiPlaced, stack: OrdersStack
):
    trace_id = strangler.purchase.trace_id
    links = strangler.answer.json()
    # the status page shows it (small, muted, as the shop's confirmation does)
    page = httpx.get(stack.orders.url + links["page_url"], timeout=10)
    assert page.status_code == 200
    assert f'<p class="muted small trace-id">Trace {trace_id}</p>' in page.text
    # while the page itself, another request, names its own trace
    assert page.headers["X-Trace-Id"] not in ("", trace_id)
    # and every event of the order's journey carries the purchase's trace id
    journey = httpx.get(
        stack.orders.url + links["status_url"].replace("/?", "/journey/?"), timeout=10
    )
    assert journey.headers["X-Trace-Id"]
    events = journey.json()
    assert {e["type"] for e in events} >= {
        "orders.order-accepted",
        "fulfillment.order-fulfilled",
    }
    assert {e["trace_id"] for e in events} == {trace_id}


def test_a_replayed_event_is_a_new_trace_linked_to_the_purchase(stack, store):
    # given a purchase of its own, fulfilled
    since = (datetime.now(UTC) - timedelta(milliseconds=1)).isoformat()
    placed = api_placed(stack, store)
    root = _only(_spans(placed.trace, "orders-api", "server"))
    # when its accepted event is published again (`events replay`)
    stack.orders_manage(
        "events", "replay", "--since", since, "--type", "orders.order-accepted"
    )

    def replayed(trace: Trace) -> bool:
        # both deliveries, each with the two events the orders worker got back
        return (
            len(_spans(trace, "fulfillment-worker", "consumer")) == 2
            and len(_spans(trace, "orders-worker", "consumer")) == 4
        )

    trace = trace_wait(store, placed.purchase.trace_id, complete=replayed)
    # then the second publish is a trace of its own, linked to the accept request
    publishes = _spans(trace, "outbox-relay", "internal", "outbox publish")
    again = _only([s for s in publishes if s.trace_id != root.trace_id])
    assert again.links == ((root.trace_id, root.span_id),)
    assert again.attributes["orders.event.publish_count"] == 2
    assert trace.relation[again.span_id] == "link"
    assert trace.parent_of(again) == root
    # and the second delivery, in that new trace, changed nothing
    second = [
        s
        for s in _spans(trace, "orders-worker", "consumer")
        if s.trace_id == again.trace_id
    ]
    assert {s.attributes["orders.event.outcome"] for s in second} == {"duplicate"}
