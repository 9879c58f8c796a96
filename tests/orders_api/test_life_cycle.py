"""An order's life cycle: legal status changes only, events applied once, the outbox
relay publishing after commit (read back from the broker's real queue) and again
after the broker failed mid-batch. A relay process killed mid-batch: test_resilience."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from common import events
from common.errors import InvalidEvent, NotFound
from common.tracing import carrier_sampled
from common.tracing.bundles import carrier_trace_id
from orders_api.exceptions import InvalidOrderStatus
from orders_api.live import broadcast
from orders_api.models import Event, Order, Sale
from orders_api.ordering import life_cycle, services
from orders_api.outbox import relay as outbox
from orders_api.tasks import handle_fulfillment_event
from tests.broker import Message, order_numbers, queue_messages

pytestmark = pytest.mark.django_db(transaction=True)
S = Order.Status


def placed_order() -> Order:
    return services.order_place(
        slug="muskie-casting-rod",
        quantity=1,
        email="angler@example.com",
        trace_id=events.trace_id_new(),
    ).order


def fulfillment_event(order: Order, type_: str, **data: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": type_,
        "source": "fulfillment",
        "time": timezone.now().isoformat(),
        "trace_id": order.trace_id,
        "version": 1,
        "data": {"order_number": order.number, **data},
    }


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (S.ACCEPTED, S.QUEUED),
        (S.QUEUED, S.IN_WAREHOUSE),
        (S.IN_WAREHOUSE, S.FULFILLED),
        (S.IN_WAREHOUSE, S.FAILED),
        (S.FAILED, S.FULFILLED),
        # A dead letter's replay, once the order took its units back.
        (S.FAILED, S.QUEUED),
        (S.ACCEPTED, S.FULFILLED),
    ],
)
def test_legal_status_changes(sale: Sale, start: str, target: str) -> None:
    order = placed_order()
    Order.objects.filter(pk=order.pk).update(status=start)
    order.refresh_from_db()

    life_cycle.order_status_change(order=order, status=target)

    order.refresh_from_db()
    assert order.status == target


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (S.FULFILLED, S.IN_WAREHOUSE),
        (S.FULFILLED, S.FAILED),
        (S.IN_WAREHOUSE, S.QUEUED),
        (S.QUEUED, S.ACCEPTED),
        (S.FULFILLED, S.FULFILLED),
    ],
)
def test_illegal_status_changes_raise(sale: Sale, start: str, target: str) -> None:
    order = placed_order()
    Order.objects.filter(pk=order.pk).update(status=start)
    order.refresh_from_db()

    with pytest.raises(InvalidOrderStatus):
        life_cycle.order_status_change(order=order, status=target)

    order.refresh_from_db()
    assert order.status == start


@pytest.mark.parametrize(
    ("sources", "target"),
    [
        ([S.FULFILLED], S.IN_WAREHOUSE),
        ([S.ACCEPTED, S.IN_WAREHOUSE], S.QUEUED),
        ([S.QUEUED], S.ACCEPTED),
        ([], S.QUEUED),
    ],
)
def test_a_bulk_status_change_the_table_forbids_raises_and_changes_nothing(
    sale: Sale, sources: list[str], target: str
) -> None:
    # Given orders in every status the bulk change names
    orders = [placed_order() for _ in range(max(len(sources), 1))]
    for order, start in zip(orders, sources, strict=False):
        Order.objects.filter(pk=order.pk).update(status=start)
    before = dict(Order.objects.values_list("pk", "status"))

    # When a bulk change asks for a move the transition table forbids
    with pytest.raises(InvalidOrderStatus):
        life_cycle.orders_status_change(
            order_ids=[o.pk for o in orders], status=target, sources=sources
        )

    # Then no order moved
    assert dict(Order.objects.values_list("pk", "status")) == before


def test_the_relays_bulk_mark_moves_only_accepted_orders(sale: Sale) -> None:
    # Given one accepted order and one a worker already took to the warehouse
    accepted, ahead = placed_order(), placed_order()
    Order.objects.filter(pk=ahead.pk).update(status=S.IN_WAREHOUSE)

    # When the relay marks both queued
    moved = life_cycle.orders_mark_queued(order_ids=[accepted.pk, ahead.pk])

    # Then only the accepted one moved; the other is not sent backwards
    assert moved == 1
    assert Order.objects.get(pk=accepted.pk).status == S.QUEUED
    assert Order.objects.get(pk=ahead.pk).status == S.IN_WAREHOUSE


def test_a_fulfillment_event_is_recorded_and_applied_once(sale: Sale) -> None:
    order = placed_order()
    event = fulfillment_event(order, events.ORDER_FULFILLED, warehouse_id=7)

    first = life_cycle.fulfillment_event_record(raw=event)
    again = life_cycle.fulfillment_event_record(raw=event)

    assert first.applied
    assert not first.duplicate
    assert again.duplicate
    assert not again.applied
    order.refresh_from_db()
    assert order.status == S.FULFILLED
    assert Event.objects.filter(pk=event["id"]).count() == 1


def test_a_late_started_event_is_logged_but_changes_nothing(sale: Sale) -> None:
    order = placed_order()
    life_cycle.fulfillment_event_record(
        raw=fulfillment_event(order, events.ORDER_FULFILLED)
    )

    late = life_cycle.fulfillment_event_record(
        raw=fulfillment_event(order, events.ORDER_STARTED)
    )

    assert not late.applied
    assert not late.duplicate
    order.refresh_from_db()
    assert order.status == S.FULFILLED
    journey = list(Event.objects.filter(order=order).values_list("type", "applied"))
    assert journey[-1] == (events.ORDER_STARTED, False)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: e.pop("trace_id"),
        lambda e: e.update(version=2),
        lambda e: e.update(id="not-a-uuid"),
        lambda e: e.update(time="yesterday"),
        lambda e: e.update(time="2026-01-01T00:00:00"),
        lambda e: e.update(type="orders.order-accepted"),
        lambda e: e.update(type="Not A Type"),
        lambda e: e.update(data=[]),
        lambda e: e.update(extra=1),
        lambda e: e["data"].pop("order_number"),
    ],
    ids=[
        "no-trace",
        "version-2",
        "bad-id",
        "bad-time",
        "naive-time",
        "wrong-type",
        "bad-type",
        "data-list",
        "extra-key",
        "no-number",
    ],
)
def test_malformed_events_are_refused_and_write_nothing(
    sale: Sale, mutate: Any
) -> None:
    order = placed_order()
    event = fulfillment_event(order, events.ORDER_FULFILLED)
    mutate(event)

    with pytest.raises(InvalidEvent):
        life_cycle.fulfillment_event_record(raw=event)

    order.refresh_from_db()
    assert order.status == S.ACCEPTED
    assert Event.objects.count() == 1  # the order's own accepted event


def test_an_event_for_an_unknown_order_is_not_found(sale: Sale) -> None:
    order = placed_order()
    event = fulfillment_event(order, events.ORDER_FULFILLED)
    event["data"]["order_number"] = "MU-NOSUCHORDER"

    with pytest.raises(NotFound):
        life_cycle.fulfillment_event_record(raw=event)


@pytest.fixture
def queue(settings: Any) -> Iterator[str]:
    """A fulfillment queue of this test's own on the real broker; emptied after."""
    name = f"test-fulfillment-{uuid.uuid4().hex[:8]}"
    settings.FULFILLMENT_QUEUE = name
    yield name
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(name)


def waiting(queue: str) -> list[Message]:
    return queue_messages(settings.CELERY_BROKER_URL, queue)


def failing_after(count: int) -> events.Publisher:
    """The real publisher, until the broker goes away after `count` messages."""
    publish = outbox.celery_publisher()
    sent: list[str] = []

    def flaky(*, task: str, envelope: events.Payload, queue: str) -> None:
        if len(sent) >= count:
            raise ConnectionError("the broker went away")
        publish(task=task, envelope=envelope, queue=queue)
        sent.append(task)

    return flaky


def test_the_relay_publishes_committed_events_once_and_marks_them_queued(
    sale: Sale, queue: str
) -> None:
    orders = [placed_order() for _ in range(3)]
    publish = outbox.celery_publisher()

    assert outbox.outbox_publish_batch(publish=publish, limit=10) == 3
    assert outbox.outbox_publish_batch(publish=publish, limit=10) == 0

    # the broker's queue holds one message per order, for the fulfillment task
    messages = waiting(queue)
    assert [m.task for m in messages] == ["fulfillment.handle_order_accepted"] * 3
    assert sorted(order_numbers(messages)) == sorted(o.number for o in orders)
    assert set(Order.objects.values_list("status", flat=True)) == {S.QUEUED}


def test_the_relay_bundles_traced_orders_too_each_envelope_naming_its_trace(
    sale: Sale, queue: str
) -> None:
    # Given 4 accepted orders, the third in a sampled trace
    orders = [placed_order() for _ in range(4)]
    traced = Event.objects.get(order=orders[2], type=events.ORDER_ACCEPTED)
    traced.trace_context = {"traceparent": f"00-{'a' * 32}-{'b' * 16}-01"}
    traced.save(update_fields=["trace_context"])

    # When the relay publishes them, up to 2 a message
    publish = outbox.celery_publisher()
    assert outbox.outbox_publish_batch(publish=publish, limit=10, bundle=2) == 4

    # Then they went in order, 2 a message, the traced one bundled too
    messages = waiting(queue)
    assert [m.task for m in messages] == ["fulfillment.handle_order_accepted"] * 2
    assert [len(m.envelopes) for m in messages] == [2, 2]
    assert order_numbers(messages) == [o.number for o in orders]
    assert set(Order.objects.values_list("status", flat=True)) == {S.QUEUED}
    # and in the message that carries it, each envelope names its trace: the
    # sampled one its purchase's, the other one a trace that is not sampled; the
    # untraced message's envelopes are as they always were
    traced_env, other_env = messages[1].envelopes
    assert carrier_sampled(traced_env[events.BUNDLED_TRACE_KEY])
    assert carrier_trace_id(traced_env[events.BUNDLED_TRACE_KEY]) == "a" * 32
    assert not carrier_sampled(other_env[events.BUNDLED_TRACE_KEY])
    assert all(events.BUNDLED_TRACE_KEY not in e for e in messages[0].envelopes)
    # and nothing is published twice
    assert outbox.outbox_publish_batch(publish=publish, limit=10, bundle=2) == 0


def test_the_orders_worker_applies_a_batch_of_events_in_order(sale: Sale) -> None:
    # Given one order's end and the next one's start in one message
    first, second = placed_order(), placed_order()
    batch = [
        fulfillment_event(first, events.ORDER_FULFILLED, warehouse_id=1),
        fulfillment_event(second, events.ORDER_STARTED),
    ]

    # When the orders-worker's task runs it (twice: a redelivery)
    outcome = handle_fulfillment_event.apply(args=[batch]).get()
    again = handle_fulfillment_event.apply(args=[batch]).get()

    # Then each event was applied once, as if it had come alone
    assert outcome == "applied,applied"
    assert again == "duplicate,duplicate"
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (S.FULFILLED, S.IN_WAREHOUSE)
    assert Event.objects.filter(pk__in=[e["id"] for e in batch]).count() == 2


def test_a_batchs_run_of_events_is_applied_as_each_alone_would_be(sale: Sale) -> None:
    # Given 3 orders, the last already fulfilled, and an order nobody knows
    orders = [placed_order() for _ in range(3)]
    Order.objects.filter(pk=orders[2].pk).update(status=S.FULFILLED)
    stranger = fulfillment_event(orders[0], events.ORDER_STARTED)
    stranger["data"]["order_number"] = "NOBODY-1"
    starts = [fulfillment_event(o, events.ORDER_STARTED) for o in orders]
    ends = [fulfillment_event(o, events.ORDER_FULFILLED) for o in orders[:2]]
    events_sent = [*starts[:2], stranger, starts[2], *ends]
    batch: list[Any] = ["not an event", *events_sent]

    # When the orders-worker's task runs the message (twice: a redelivery)
    with CaptureQueriesContext(connection) as first_pass:
        outcome = handle_fulfillment_event.apply(args=[batch]).get()
    again = handle_fulfillment_event.apply(args=[batch]).get()

    # Then each event did what it would have done alone, in the message's order
    assert outcome.split(",") == [
        "invalid",
        "applied",
        "applied",
        "unknown-order",
        "logged",  # a late start: not applied, but in the log
        "applied",
        "applied",
    ]
    assert again.split(",") == [
        "invalid",
        *["duplicate"] * 2,
        "unknown-order",
        *["duplicate"] * 3,
    ]
    statuses = Order.objects.filter(pk__in=[o.pk for o in orders])
    assert set(statuses.values_list("status", flat=True)) == {S.FULFILLED}
    logged = Event.objects.filter(pk__in=[e["id"] for e in events_sent])
    assert sorted(logged.values_list("applied", flat=True)) == [False] + [True] * 4
    assert not logged.filter(pk=stranger["id"]).exists()
    # and the first time took one statement for each run of one type
    writes = [q for q in first_pass.captured_queries if "INSERT" in q["sql"]]
    assert len(writes) == 2


def test_a_batch_moving_an_order_twice_pushes_its_last_state_once(sale: Sale) -> None:
    # Given a websocket listener on an order whose start and end come in one message
    order = placed_order()
    batch = [
        fulfillment_event(order, events.ORDER_STARTED),
        fulfillment_event(order, events.ORDER_FULFILLED, warehouse_id=1),
    ]

    layer, group = get_channel_layer(), broadcast.order_group(order.pk)
    assert layer is not None
    loop = asyncio.new_event_loop()
    channel = loop.run_until_complete(layer.new_channel())
    loop.run_until_complete(layer.group_add(group, channel))

    async def heard() -> list[str]:
        # A marker after the task's pushes: everything before it has arrived.
        await layer.group_send(group, {"type": "test.marker"})
        states = []
        while (message := await layer.receive(channel))["type"] != "test.marker":
            states.append(message["state"]["status"])
        await layer.group_discard(group, channel)
        return states

    # When the orders-worker's task runs it
    assert handle_fulfillment_event.apply(args=[batch]).get() == "applied,applied"
    try:
        states = loop.run_until_complete(heard())
    finally:
        loop.close()

    # Then its listener heard one push, the order as it now is
    assert states == [S.FULFILLED]


def test_a_broker_failing_mid_batch_leaves_the_batch_to_publish_again(
    sale: Sale, queue: str
) -> None:
    # Given 3 events and a broker that goes away after taking the first
    orders = [placed_order() for _ in range(3)]
    with pytest.raises(ConnectionError):
        outbox.outbox_publish_batch(publish=failing_after(1), limit=10)
    assert len(waiting(queue)) == 1

    # Then nothing was marked sent, and the next pass publishes all three
    assert Event.objects.filter(outbox_pending=True).count() == 3
    assert outbox.outbox_publish_batch(publish=outbox.celery_publisher(), limit=10) == 3
    # so the queue holds every order, the first twice under one event id (at least
    # once: the fulfillment side keeps the first)
    messages = waiting(queue)
    numbers = order_numbers(messages)
    assert sorted(set(numbers)) == sorted(o.number for o in orders)
    assert len(numbers) == 4
    assert messages[0].envelope == messages[1].envelope
    assert set(Order.objects.values_list("status", flat=True)) == {S.QUEUED}


def test_the_tally_folds_orders_into_units_sold(sale: Sale) -> None:
    placed_order()
    placed_order()

    assert outbox.orders_tally(limit=10) == 2
    assert outbox.orders_tally(limit=10) == 0
    sale.refresh_from_db()
    assert sale.units_sold == 2


def test_orders_with_no_word_from_the_queue_are_published_again(
    sale: Sale, queue: str
) -> None:
    order = placed_order()
    publish = outbox.celery_publisher()
    outbox.outbox_publish_batch(publish=publish, limit=10)
    Order.objects.filter(pk=order.pk).update(
        updated_at=timezone.now() - timedelta(minutes=10)
    )

    assert outbox.orders_redeliver(older_than=timedelta(minutes=5)) == 1

    assert outbox.outbox_publish_batch(publish=publish, limit=10) == 1
    # the broker's queue has the order's event again, the same event (same id)
    messages = waiting(queue)
    assert order_numbers(messages) == [order.number, order.number]
    assert messages[0].envelope["id"] == messages[1].envelope["id"]


def test_events_replay_sends_events_since_a_moment_to_the_queue_again(
    sale: Sale, queue: str
) -> None:
    order = placed_order()
    publish = outbox.celery_publisher()
    outbox.outbox_publish_batch(publish=publish, limit=10)

    count = outbox.events_replay(since=timezone.now() - timedelta(minutes=1))

    assert count == 1
    assert Event.objects.filter(outbox_pending=True).count() == 1
    # and the relay's next pass puts it on the broker's queue once more
    assert outbox.outbox_publish_batch(publish=publish, limit=10) == 1
    assert order_numbers(waiting(queue)) == [order.number, order.number]
