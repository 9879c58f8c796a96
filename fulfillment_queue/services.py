"""The paced fulfillment step: hand one accepted order to the warehouse, report back.

Idempotent end to end: the warehouse fulfils an `order_ref` once (a second delivery
answers 200 with the first result), and every event this step emits has an id derived
from the order and the step, so a repeated one is a duplicate its consumer ignores.
"""

from __future__ import annotations

import logging
import random
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from common import events
from common.auth import bearer_headers
from common.events import Publisher
from common.http_client import LazyClient
from common.tracing import bundled_trace, carrier_sampled, current_trace_id
from common.tracing.bundles import carrier_trace_id
from fulfillment_queue import orders_client
from fulfillment_queue.models import DeadLetter
from fulfillment_queue.slots import warehouse_slots

logger = logging.getLogger(__name__)

# Event ids are uuid5(namespace, "<order_ref>:<step>"): the same step, the same id.
EVENT_NAMESPACE = uuid.UUID("6f1c3b9e-5d0a-4c47-9a53-6f2b7e1d8c40")
_ORDER_REF = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# One pool per worker process, shared by its task threads.
_client = LazyClient(max_connections=32, max_keepalive_connections=16)


class WarehouseBusy(Exception):
    """The warehouse is at capacity, down or slow: try again later."""


class PermanentFailure(Exception):
    """Retrying cannot help: a malformed event, or the warehouse refused the order."""


@dataclass(frozen=True)
class AcceptedOrder:
    event_id: str
    order_ref: str
    sku: str
    quantity: int
    trace_id: str


def celery_publisher() -> Publisher:
    from fulfillment_queue.celery_app import app

    return events.celery_publisher(app)


def accepted_order_parse(raw: Any) -> AcceptedOrder:
    if not isinstance(raw, dict) or raw.get("type") != events.ORDER_ACCEPTED:
        raise PermanentFailure("not an orders.order-accepted event")
    if raw.get("version") != events.VERSION:
        raise PermanentFailure(f"unknown event version {raw.get('version')!r}")
    data = raw.get("data")
    if not isinstance(data, dict):
        raise PermanentFailure("the event has no data object")
    ref, sku, quantity = data.get("order_number"), data.get("sku"), data.get("quantity")
    trace_id = raw.get("trace_id")
    if not isinstance(ref, str) or not _ORDER_REF.fullmatch(ref):
        raise PermanentFailure(f"bad order_number {ref!r}")
    if not isinstance(sku, str) or not isinstance(quantity, int) or quantity < 1:
        raise PermanentFailure("bad sku or quantity")
    if not events.trace_id_valid(trace_id):
        trace_id = events.trace_id_new()
    return AcceptedOrder(str(raw.get("id")), ref, sku, quantity, trace_id)


def event_envelope(
    *, type_: str, order: AcceptedOrder, step: str, data: dict[str, Any]
) -> dict[str, Any]:
    return events.envelope_new(
        type_=type_,
        source=events.FULFILLMENT_SOURCE,
        data={"order_number": order.order_ref, **data},
        trace_id=order.trace_id,
        event_id=uuid.uuid5(EVENT_NAMESPACE, f"{order.order_ref}:{step}"),
    ).as_json()


def warehouse_fulfil(*, order: AcceptedOrder) -> dict[str, Any]:
    """POST the order to the warehouse in one of the worker's slots (slots.py). Not
    done: WarehouseBusy or PermanentFailure."""
    client = _client.get()
    url = settings.WAREHOUSE_URL.rstrip("/") + "/fulfilments/"
    body = {
        "order_ref": order.order_ref,
        "lines": [{"sku": order.sku, "quantity": order.quantity}],
    }
    headers = bearer_headers(settings.INTERNAL_API_TOKEN)
    try:
        with warehouse_slots().held():
            response = client.post(
                url,
                json=body,
                headers=headers,
                timeout=settings.FULFILLMENT_WAREHOUSE_TIMEOUT,
            )
    except httpx.HTTPError as exc:
        raise WarehouseBusy(f"warehouse unreachable: {type(exc).__name__}") from None
    if response.status_code in (200, 201):
        body = response.json()
        return {"warehouse_id": body["id"], "replayed": response.status_code == 200}
    if response.status_code == 503 or response.status_code >= 500:
        raise WarehouseBusy(f"warehouse answered {response.status_code}")
    raise PermanentFailure(
        f"warehouse refused the order: {response.status_code} {response.text[:200]}"
    )


def order_fulfill(*, raw: Any, publish: Publisher) -> str:
    """Tell the orders service the order is in the warehouse, fulfil it, report."""
    order = accepted_order_parse(raw)
    queue = settings.ORDERS_EVENTS_QUEUE
    publish(
        task=events.HANDLE_FULFILLMENT_EVENT,
        envelope=event_envelope(
            type_=events.ORDER_STARTED, order=order, step="started", data={}
        ),
        queue=queue,
    )
    receipt = warehouse_fulfil(order=order)
    logger.info("order %s packed by the warehouse: %s", order.order_ref, receipt)
    publish(
        task=events.HANDLE_FULFILLMENT_EVENT,
        envelope=event_envelope(
            type_=events.ORDER_FULFILLED, order=order, step="fulfilled", data=receipt
        ),
        queue=queue,
    )
    return order.order_ref


@dataclass
class BatchReport:
    """What `orders_fulfill` did with a batch of accepted orders."""

    fulfilled: list[str] = field(default_factory=list)
    # Orders retrying cannot help (malformed, refused by the warehouse), and why.
    refused: list[tuple[Any, str]] = field(default_factory=list)
    # The order the warehouse could not take now (busy, down, slow), and why.
    busy: Any = None
    busy_reason: str = ""
    # Orders after it, or past the time budget: not tried, to be sent again.
    rest: list[Any] = field(default_factory=list)


def orders_fulfill(
    *, raws: list[Any], publish: Publisher, budget_seconds: float
) -> BatchReport:
    """Fulfil a batch of accepted orders one after the other, as many single tasks
    would, with fewer messages: one "started" message for the batch's orders (the
    fulfillment step has them), then their "fulfilled" reports, held together up to
    FULFILLMENT_REPORT_SECONDS (a fast warehouse: one message for the batch; a slow
    one: a message an order, as single tasks would send).

    An order whose purchase's trace is sampled and is not the message's (the relay
    bundles sampled orders too, each with its context: events.BUNDLED_TRACE_KEY) is
    done in a consumer span of its own trace, its two reports sent alone from it,
    so that its trace holds the warehouse call and the orders worker's steps as a
    single task's would.

    Stops at the first order the warehouse cannot take now (`busy`), or once the
    batch has run `budget_seconds` (its message must be done well within the broker's
    visibility timeout); what it did not try is `rest`. Those already reported
    started stay so until their retry reports them fulfilled or failed (their start
    again is a duplicate by its event id).
    """
    report = BatchReport()
    taken: list[tuple[Any, AcceptedOrder]] = []
    for raw in raws:
        try:
            taken.append((raw, accepted_order_parse(raw)))
        except PermanentFailure as exc:
            report.refused.append((raw, str(exc)))
    queue = settings.ORDERS_EVENTS_QUEUE
    _events_publish(
        [_started(order) for raw, order in taken if not _own_trace(raw)],
        publish=publish,
        queue=queue,
    )
    held = _HeldReports(publish=publish, queue=queue)
    started = call_began = time.monotonic()
    for index, (raw, order) in enumerate(taken):
        if index and time.monotonic() - started > budget_seconds:
            report.rest = [raw for raw, _ in taken[index:]]
            break
        # Would the reports held wait too long if this call takes as long as the
        # last one? Then they go now.
        held.send_if_late(after=time.monotonic() - call_began)
        call_began = time.monotonic()
        if not _batch_order_fulfill(raw, order, held=held, report=report):
            report.rest = [raw for raw, _ in taken[index + 1 :]]
            break
    held.send()
    return report


def _batch_order_fulfill(
    raw: Any, order: AcceptedOrder, *, held: _HeldReports, report: BatchReport
) -> bool:
    """One order of a batch, in its own trace if it has one; False when the
    warehouse could not take it now (the batch stops)."""
    with bundled_trace(
        f"run/{events.HANDLE_ORDER_ACCEPTED}",
        raw.get(events.BUNDLED_TRACE_KEY),
        attributes={"celery.task_name": events.HANDLE_ORDER_ACCEPTED},
    ) as own:
        if own:
            _events_publish([_started(order)], publish=held.publish, queue=held.queue)
        try:
            receipt = warehouse_fulfil(order=order)
        except WarehouseBusy as exc:
            report.busy, report.busy_reason = raw, str(exc)
            return False
        except PermanentFailure as exc:
            report.refused.append((raw, str(exc)))
            return True
        logger.info("order %s packed by the warehouse: %s", order.order_ref, receipt)
        fulfilled = event_envelope(
            type_=events.ORDER_FULFILLED, order=order, step="fulfilled", data=receipt
        )
        if own:
            _events_publish([fulfilled], publish=held.publish, queue=held.queue)
        else:
            held.add(fulfilled)
        report.fulfilled.append(order.order_ref)
    return True


def _started(order: AcceptedOrder) -> dict[str, Any]:
    return event_envelope(
        type_=events.ORDER_STARTED, order=order, step="started", data={}
    )


def _own_trace(raw: Any) -> bool:
    """Does this order of a batch go on in a sampled trace not the message's?"""
    carrier = raw.get(events.BUNDLED_TRACE_KEY) if isinstance(raw, dict) else None
    return (
        isinstance(carrier, dict)
        and carrier_sampled(carrier)
        and carrier_trace_id(carrier) != current_trace_id()
    )


class _HeldReports:
    """Reports held to travel together, about FULFILLMENT_REPORT_SECONDS at most (a
    buyer sees "fulfilled" about that late at worst)."""

    def __init__(self, *, publish: Publisher, queue: str) -> None:
        self.publish, self.queue = publish, queue
        self.envelopes: list[dict[str, Any]] = []
        self.since = 0.0

    def add(self, envelope: dict[str, Any]) -> None:
        if not self.envelopes:
            self.since = time.monotonic()
        self.envelopes.append(envelope)

    def send_if_late(self, *, after: float) -> None:
        """Send them if they would be late `after` seconds from now."""
        waited = time.monotonic() - self.since
        if self.envelopes and waited + after >= settings.FULFILLMENT_REPORT_SECONDS:
            self.send()

    def send(self) -> None:
        _events_publish(self.envelopes, publish=self.publish, queue=self.queue)
        self.envelopes = []


def _events_publish(
    envelopes: list[dict[str, Any]], *, publish: Publisher, queue: str
) -> None:
    if envelopes:
        publish(
            task=events.HANDLE_FULFILLMENT_EVENT,
            envelope=envelopes[0] if len(envelopes) == 1 else envelopes,
            queue=queue,
        )


def backoff_seconds(*, retries: int) -> float:
    """Exponential with full jitter, capped: 1, 2, 4, ... up to the ceiling."""
    ceiling = min(
        settings.FULFILLMENT_BACKOFF_MAX_SECONDS,
        settings.FULFILLMENT_BACKOFF_SECONDS * (2**retries),
    )
    return random.uniform(ceiling / 2, ceiling)


def dead_letter_record(
    *, raw: Any, reason: str, attempts: int, publish: Publisher
) -> DeadLetter:
    """Park the order for an operator, and tell the orders service it failed."""
    data = raw.get("data") if isinstance(raw, dict) else None
    ref = str((data or {}).get("order_number") or "?")[:64]
    try:
        event_id = uuid.UUID(str(raw.get("id")))
    except (ValueError, AttributeError):
        event_id = uuid.uuid5(EVENT_NAMESPACE, repr(raw)[:1000])
    try:
        with transaction.atomic():
            letter = DeadLetter.objects.create(
                event_id=event_id,
                order_ref=ref,
                envelope=raw if isinstance(raw, dict) else {"raw": repr(raw)},
                reason=reason,
                attempts=attempts,
            )
    except IntegrityError:
        letter = DeadLetter.objects.get(event_id=event_id, replayed_at__isnull=True)
    logger.error("dead-lettered %s after %d attempts: %s", ref, attempts, reason)
    try:
        order = accepted_order_parse(raw)
    except PermanentFailure:
        return letter
    publish(
        task=events.HANDLE_FULFILLMENT_EVENT,
        envelope=event_envelope(
            type_=events.ORDER_FAILED,
            order=order,
            step=f"failed:{letter.pk}",
            data={"reason": reason, "attempts": attempts},
        ),
        queue=settings.ORDERS_EVENTS_QUEUE,
    )
    return letter


@dataclass
class ReplayReport:
    replayed: list[DeadLetter] = field(default_factory=list)
    # Letters left open, and why (their order's units were sold again, ...).
    skipped: list[tuple[DeadLetter, str]] = field(default_factory=list)
    # The letter the replay stopped at (nothing sent for it or after it), and why.
    stopped_at: DeadLetter | None = None
    stopped_because: str = ""


def dead_letters_replay(*, ids: list[int] | None, publish: Publisher) -> ReplayReport:
    """Send dead letters back to the queue (all open ones when `ids` is None).

    Each order takes its units back from the orders service first: one whose units
    are gone (sold again since it failed) stays a dead letter, never shipped, or the
    sale would be oversold. When the orders service cannot say, the replay stops.
    A crash between the reclaim and the mark is safe: the order is no longer failed,
    so a second replay reclaims nothing and sends it again (the warehouse fulfils an
    order_ref once).
    """
    letters = DeadLetter.objects.filter(replayed_at__isnull=True)
    if ids is not None:
        letters = letters.filter(pk__in=ids)
    report = ReplayReport()
    for letter in letters.order_by("pk"):
        try:
            refused = orders_client.order_reclaim(order_ref=letter.order_ref)
        except orders_client.OrdersUnavailable as exc:
            report.stopped_at, report.stopped_because = letter, str(exc)
            break
        if refused is not None:
            report.skipped.append((letter, refused))
            continue
        publish(
            task=events.HANDLE_ORDER_ACCEPTED,
            envelope=letter.envelope,
            queue=settings.FULFILLMENT_QUEUE,
        )
        DeadLetter.objects.filter(pk=letter.pk).update(replayed_at=timezone.now())
        report.replayed.append(letter)
    return report
