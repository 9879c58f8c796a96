"""An order's life cycle: the transition table, and every status change through it.

accepted → queued (the relay handed it to the queue) → in_warehouse → fulfilled or
failed, from the fulfillment queue's events. An illegal change raises
InvalidOrderStatus, one order at a time or in bulk; it never silently passes. An
order that fails gives its units back to the sale, once (sales/returns.py); a replay
of its dead letter takes them back first, or does not ship it (ordering/reclaim.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from common import events
from common.errors import InvalidEvent, NotFound
from orders_api.exceptions import InvalidOrderStatus
from orders_api.models import Event, Order
from orders_api.ordering.event_apply import order_event_apply, orders_events_apply
from orders_api.ordering.event_log import event_log_write
from orders_api.sales.returns import order_units_release

logger = logging.getLogger(__name__)

S = Order.Status
LEGAL_TRANSITIONS: dict[str, frozenset[str]] = {
    S.ACCEPTED: frozenset({S.QUEUED, S.IN_WAREHOUSE, S.FULFILLED, S.FAILED}),
    S.QUEUED: frozenset({S.IN_WAREHOUSE, S.FULFILLED, S.FAILED}),
    S.IN_WAREHOUSE: frozenset({S.FULFILLED, S.FAILED}),
    # A dead-lettered order that is replayed goes back to the warehouse. Its replay
    # first takes its units back from the sale (ordering/reclaim.py): failed →
    # queued, from where the queue's events carry it on as any other order.
    S.FAILED: frozenset({S.QUEUED, S.IN_WAREHOUSE, S.FULFILLED}),
    S.FULFILLED: frozenset(),
}
EVENT_STATUS: dict[str, str] = {
    events.ORDER_STARTED: S.IN_WAREHOUSE,
    events.ORDER_FULFILLED: S.FULFILLED,
    events.ORDER_FAILED: S.FAILED,
}


def order_status_sources(*, status: str) -> frozenset[str]:
    """The statuses an order may move to `status` from, per the transition table."""
    return frozenset(
        source for source, targets in LEGAL_TRANSITIONS.items() if status in targets
    )


def order_status_change(*, order: Order, status: str) -> Order:
    """Move an order along its life cycle; an illegal move raises InvalidOrderStatus."""
    if status not in LEGAL_TRANSITIONS.get(order.status, frozenset()):
        raise InvalidOrderStatus(
            f"Order {order.number} cannot go from {order.status} to {status}."
        )
    order.status = status
    order.save(update_fields=["status", "updated_at"])
    return order


def orders_status_change(
    *, order_ids: Iterable[Any], status: str, sources: Iterable[str]
) -> int:
    """Move the orders among `order_ids` that are in one of `sources` to `status`.

    One UPDATE, filtered on those from-states, so a row that has moved on meanwhile
    (a worker was quicker than the relay) is left alone; returns how many moved.
    Raises InvalidOrderStatus, changing nothing, when the table forbids any of
    `sources` → `status`.
    """
    sources = frozenset(sources)
    illegal = sorted(sources - order_status_sources(status=status))
    if illegal or not sources:
        raise InvalidOrderStatus(
            f"Orders cannot go from {', '.join(illegal) or 'nothing'} to {status}."
        )
    return Order.objects.filter(pk__in=list(order_ids), status__in=sources).update(
        status=status, updated_at=timezone.now()
    )


def orders_mark_queued(*, order_ids: list[Any]) -> int:
    """accepted → queued for orders whose event the relay has handed to the queue."""
    return orders_status_change(
        order_ids=order_ids, status=S.QUEUED, sources=[S.ACCEPTED]
    )


@dataclass(frozen=True)
class EventOutcome:
    order: Order | None
    # False: a duplicate (already recorded) or a late event that changed nothing.
    applied: bool
    duplicate: bool


def fulfillment_event_record(*, raw: Any) -> EventOutcome:
    """Record a fulfillment event in the log and apply it to its order, once.

    Idempotent by event id: a duplicate is a no-op. An event whose status change is
    illegal (a late `order-started` after `order-fulfilled`) is logged, not applied.
    Started and fulfilled take one statement (ordering/event_apply.py); failed, which
    gives the order's units back, one transaction here.
    """
    envelope = events.envelope_parse(raw)
    target = EVENT_STATUS.get(envelope.type)
    number = envelope.data.get("order_number")
    if target is None or not isinstance(number, str):
        raise InvalidEvent(f"Not a fulfillment event: {envelope.type}.")
    if target != S.FAILED:
        return _order_moved_on(envelope=envelope, target=target)
    try:
        with transaction.atomic(durable=True):
            order = (
                Order.objects.select_for_update(of=("self",))
                .select_related("sale")  # its push names the sale: no query more
                .filter(number=number)
                .first()
            )
            if order is None:
                raise NotFound(f"No order {number!r}.")
            if Event.objects.filter(pk=envelope.id).exists():
                return EventOutcome(order=order, applied=False, duplicate=True)
            applied = True
            try:
                order_status_change(order=order, status=target)
                if target == S.FAILED:
                    order_units_release(order=order)
            except InvalidOrderStatus as exc:
                applied = False
                logger.info("event %s not applied: %s", envelope.id, exc.detail)
            # The task's trace context is stored: a replay of it links back there.
            event_log_write(envelope=envelope, order=order, applied=applied)
    except IntegrityError:
        # The same event recorded concurrently by another worker: a duplicate.
        return EventOutcome(order=None, applied=False, duplicate=True)
    return EventOutcome(order=order, applied=applied, duplicate=False)


def _order_moved_on(*, envelope: events.Envelope, target: str) -> EventOutcome:
    """A started or fulfilled event: one statement (ordering/event_apply.py)."""
    try:
        result = order_event_apply(
            envelope=envelope,
            target=target,
            sources=order_status_sources(status=target),
        )
    except IntegrityError:
        # Logged before (a redelivery), or by another worker meanwhile.
        return EventOutcome(order=None, applied=False, duplicate=True)
    if result is None:
        raise NotFound(f"No order {envelope.data['order_number']!r}.")
    order, applied = result
    if not applied:
        logger.info(
            "event %s not applied: order %s cannot go from %s to %s",
            envelope.id,
            order.number,
            order.status,
            target,
        )
    return EventOutcome(order=order, applied=applied, duplicate=False)


def fulfillment_events_record(*, raws: list[Any]) -> list[EventOutcome | None] | None:
    """`fulfillment_event_record` of a run of started (or fulfilled) events, each of
    another order, in one statement (ordering/event_apply.py): each event's outcome,
    None for an unknown order's. None when the run cannot go as one: one is not such
    an event, or was recorded before (a redelivery); the caller records them one by
    one then.
    """
    try:
        envelopes = [events.envelope_parse(raw) for raw in raws]
    except InvalidEvent:
        return None
    kinds = {EVENT_STATUS.get(envelope.type) for envelope in envelopes}
    numbers = [envelope.data.get("order_number") for envelope in envelopes]
    target = kinds.pop() if len(kinds) == 1 else None
    if (
        target not in (S.IN_WAREHOUSE, S.FULFILLED)
        or not all(isinstance(n, str) for n in numbers)
        or len(set(numbers)) != len(numbers)
    ):
        return None
    try:
        moved = orders_events_apply(
            envelopes=envelopes,
            target=target,
            sources=order_status_sources(status=target),
        )
    except (IntegrityError, ValueError):
        return None
    outcomes: list[EventOutcome | None] = []
    for envelope, number in zip(envelopes, numbers, strict=True):
        if number not in moved:
            outcomes.append(None)
            continue
        order, applied = moved[number]
        if not applied:
            logger.info(
                "event %s not applied: order %s cannot go from %s to %s",
                envelope.id,
                number,
                order.status,
                target,
            )
        outcomes.append(EventOutcome(order=order, applied=applied, duplicate=False))
    return outcomes
