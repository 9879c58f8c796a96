"""The paced fulfillment step against a real warehouse: fulfil once, report with
deterministic event ids, retry what can succeed later, dead-letter the rest."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings as django_settings

from common import events
from fulfillment_queue import services
from fulfillment_queue.models import DeadLetter
from fulfillment_queue.tasks import handle_order_accepted
from tests.broker import Message, queue_messages
from tests.fulfillment_queue.conftest import (
    Recorder,
    accepted_event,
    order_known,
    queued,
)
from tests.support.processes import RunningService, free_port
from tests.support.stack import INTERNAL_TOKEN, fulfillment_refs


@pytest.fixture
def to_warehouse(settings: Any, warehouse: RunningService) -> RunningService:
    settings.WAREHOUSE_URL = warehouse.url
    settings.INTERNAL_API_TOKEN = INTERNAL_TOKEN
    return warehouse


def test_an_order_is_fulfilled_and_reported_started_then_fulfilled(
    to_warehouse: RunningService,
) -> None:
    recorder = Recorder()
    event = accepted_event()

    ref = services.order_fulfill(raw=event, publish=recorder)

    assert ref == event["data"]["order_number"]
    types = [envelope["type"] for _, envelope, _ in recorder.sent]
    assert types == ["fulfillment.order-started", "fulfillment.order-fulfilled"]
    assert {task for task, _, _ in recorder.sent} == {"orders.handle_fulfillment_event"}
    fulfilled = recorder.sent[1][1]
    assert fulfilled["trace_id"] == event["trace_id"]
    assert fulfilled["data"]["replayed"] is False
    assert set(fulfilled) == {
        "id",
        "type",
        "source",
        "time",
        "trace_id",
        "version",
        "data",
    }


def test_a_second_delivery_is_harmless_and_reports_the_same_event_ids(
    to_warehouse: RunningService,
) -> None:
    event = accepted_event()
    first, second = Recorder(), Recorder()

    services.order_fulfill(raw=event, publish=first)
    services.order_fulfill(raw=event, publish=second)

    assert [e["id"] for _, e, _ in first.sent] == [e["id"] for _, e, _ in second.sent]
    assert second.sent[1][1]["data"]["replayed"] is True


def test_the_warehouse_refusing_an_order_for_good_is_a_permanent_failure(
    to_warehouse: RunningService,
) -> None:
    number = "MU-CONFLICT01"
    services.order_fulfill(raw=accepted_event(number), publish=Recorder())

    with pytest.raises(services.PermanentFailure):
        services.order_fulfill(
            raw=accepted_event(number, quantity=2), publish=Recorder()
        )


@pytest.mark.parametrize(
    ("token", "status"), [("", "401"), ("not-the-warehouses-token", "403")]
)
def test_a_worker_without_the_warehouses_token_packs_nothing(
    to_warehouse: RunningService, settings: Any, token: str, status: str
) -> None:
    # Given a worker whose INTERNAL_API_TOKEN is unset or not the warehouse's
    settings.INTERNAL_API_TOKEN = token
    event = accepted_event()

    # When it hands an order to the warehouse, the warehouse refuses it for good
    with pytest.raises(services.PermanentFailure, match=status):
        services.order_fulfill(raw=event, publish=Recorder())

    # And packed nothing
    assert event["data"]["order_number"] not in fulfillment_refs("fq_warehouse")


def test_an_unreachable_warehouse_is_worth_a_retry(settings: Any) -> None:
    settings.WAREHOUSE_URL = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(services.WarehouseBusy):
        services.order_fulfill(raw=accepted_event(), publish=Recorder())


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: e.update(type="orders.order-cancelled"),
        lambda e: e.update(version=2),
        lambda e: e.update(data=None),
        lambda e: e["data"].update(order_number="has spaces"),
        lambda e: e["data"].update(quantity=0),
        lambda e: e["data"].update(quantity="1"),
        lambda e: e["data"].pop("sku"),
    ],
    ids=["type", "version", "no-data", "bad-ref", "qty-0", "qty-str", "no-sku"],
)
def test_malformed_events_are_permanent_failures(mutate: Any) -> None:
    event = accepted_event()
    mutate(event)

    with pytest.raises(services.PermanentFailure):
        services.accepted_order_parse(event)


@pytest.mark.parametrize("retries", [0, 1, 3, 10, 30])
def test_backoff_grows_and_is_capped(settings: Any, retries: int) -> None:
    settings.FULFILLMENT_BACKOFF_SECONDS = 1.0
    settings.FULFILLMENT_BACKOFF_MAX_SECONDS = 30.0

    delay = services.backoff_seconds(retries=retries)

    ceiling = min(30.0, 2**retries)
    assert ceiling / 2 <= delay <= ceiling


@pytest.mark.django_db
def test_a_dead_letter_is_recorded_once_per_event_and_reported_failed() -> None:
    event, recorder = accepted_event(), Recorder()

    first = services.dead_letter_record(
        raw=event, reason="warehouse down", attempts=3, publish=recorder
    )
    again = services.dead_letter_record(
        raw=event, reason="warehouse down", attempts=3, publish=recorder
    )

    assert first.pk == again.pk
    assert DeadLetter.objects.count() == 1
    assert [e["type"] for _, e, _ in recorder.sent] == ["fulfillment.order-failed"] * 2
    assert recorder.sent[0][1]["id"] == recorder.sent[1][1]["id"]


@pytest.mark.django_db
def test_replay_sends_open_dead_letters_back_to_the_queue(
    queues: dict[str, str], to_orders: RunningService
) -> None:
    # Given a dead letter (its failure already told to the orders side)
    publish = services.celery_publisher()
    event = accepted_event(order_known())
    services.dead_letter_record(raw=event, reason="x", attempts=1, publish=publish)
    assert queue_messages(django_settings.REDIS_URL, queues["fulfillment"]) == []

    # When it is replayed
    report = services.dead_letters_replay(ids=None, publish=publish)

    # Then the broker's fulfillment queue holds the same event, for the same task
    assert len(report.replayed) == 1
    assert queue_messages(django_settings.REDIS_URL, queues["fulfillment"]) == [
        Message("fulfillment.handle_order_accepted", event)
    ]
    assert DeadLetter.objects.filter(replayed_at__isnull=True).count() == 0


@pytest.mark.django_db
def test_the_task_fulfils_and_publishes_to_the_orders_events_queue(
    to_warehouse: RunningService, queues: dict[str, str]
) -> None:
    # When the task runs (in this process) on an accepted order
    result = handle_order_accepted.apply(args=[accepted_event()])

    # Then it fulfilled it and two events wait on the real broker for the orders side
    assert result.successful()
    assert result.result.startswith("MU-")
    assert queued(queues["events"]) == 2


@pytest.mark.django_db
def test_the_task_dead_letters_a_malformed_event_without_retrying(
    queues: dict[str, str],
) -> None:
    result = handle_order_accepted.apply(args=[{"type": "nonsense"}])

    assert result.result == "dead-lettered"
    assert DeadLetter.objects.count() == 1
    assert queued(queues["events"]) == 0


def _message_kinds(recorder: Recorder) -> list[list[str]]:
    return [
        [e["type"].split("-")[-1] for e in (m if isinstance(m, list) else [m])]
        for m in recorder.messages
    ]


@pytest.mark.parametrize(
    ("report_seconds", "messages"),
    [
        # Reports never held: one message of starts, then one an order packed.
        (0, [["started"] * 3, ["fulfilled"], ["fulfilled"], ["fulfilled"]]),
        # Held longer than the batch takes: the starts, then the ends.
        (60, [["started"] * 3, ["fulfilled"] * 3]),
    ],
)
def test_a_batch_is_fulfilled_in_order_and_reported_in_order(
    to_warehouse: RunningService,
    settings: Any,
    report_seconds: float,
    messages: list[list[str]],
) -> None:
    settings.FULFILLMENT_REPORT_SECONDS = report_seconds
    recorder = Recorder()
    batch = [accepted_event() for _ in range(3)]

    report = services.orders_fulfill(raws=batch, publish=recorder, budget_seconds=60)

    numbers = [e["data"]["order_number"] for e in batch]
    assert report.fulfilled == numbers
    assert (report.refused, report.busy, report.rest) == ([], None, [])
    assert _message_kinds(recorder) == messages
    # each event as a task of its own would have sent it, in the batch's order
    sent = [(e["type"], e["data"]["order_number"]) for _, e, _ in recorder.sent]
    assert sent == [(events.ORDER_STARTED, n) for n in numbers] + [
        (events.ORDER_FULFILLED, n) for n in numbers
    ]
    assert set(numbers) <= set(fulfillment_refs("fq_warehouse"))


def test_a_batch_stops_at_an_unreachable_warehouse_and_hands_back_the_rest(
    settings: Any,
) -> None:
    settings.WAREHOUSE_URL = f"http://127.0.0.1:{free_port()}"
    batch = [accepted_event() for _ in range(3)]

    report = services.orders_fulfill(raws=batch, publish=Recorder(), budget_seconds=60)

    assert report.fulfilled == []
    assert report.busy == batch[0]
    assert report.rest == batch[1:]


@pytest.mark.django_db
def test_the_batch_task_dead_letters_the_malformed_one_and_fulfils_the_others(
    to_warehouse: RunningService, queues: dict[str, str], settings: Any
) -> None:
    settings.FULFILLMENT_REPORT_SECONDS = 0  # each start before its call
    good = [accepted_event(), accepted_event()]

    result = handle_order_accepted.apply(args=[[good[0], {"type": "x"}, good[1]]])

    assert result.successful()
    assert result.result == ", ".join(e["data"]["order_number"] for e in good)
    assert DeadLetter.objects.count() == 1
    # started/fulfilled of both orders in 3 messages ([s1, s2], [f1], [f2])
    assert queued(queues["events"]) == 3


@pytest.mark.django_db
def test_a_batch_past_its_time_budget_sends_the_rest_back_to_the_queue(
    to_warehouse: RunningService, queues: dict[str, str], settings: Any
) -> None:
    settings.FULFILLMENT_BATCH_SECONDS = 0.0
    batch = [accepted_event() for _ in range(3)]

    result = handle_order_accepted.apply(args=[batch])

    # One order packed; the two others wait on the queue, in one message
    assert result.result == batch[0]["data"]["order_number"]
    waiting = queue_messages(django_settings.REDIS_URL, queues["fulfillment"])
    assert [m.envelope for m in waiting] == [batch[1:]]
