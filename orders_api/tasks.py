"""Thin Celery tasks of the orders service: each calls one service."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from django.db import InterfaceError, OperationalError

from common.errors import InvalidEvent, NotFound
from common.events import EVENT_TYPE_ATTRIBUTE, HANDLE_FULFILLMENT_EVENT
from common.tracing import span_annotate
from orders_api.celery_app import app
from orders_api.live import broadcast
from orders_api.models import Order
from orders_api.ordering.life_cycle import (
    fulfillment_event_record,
    fulfillment_events_record,
)

logger = logging.getLogger(__name__)


# A database connection lost under the task (PostgreSQL restarted, `faults set
# orders.db_terminate=1`): the event is recorded in one transaction that rolled
# back, so it is retried (recording is idempotent by event id), never dropped; a
# dropped one would leave its order waiting for the relay's redelivery (minutes).
DATABASE_FAULTS = (OperationalError, InterfaceError)


@app.task(
    bind=True,
    name=HANDLE_FULFILLMENT_EVENT,
    max_retries=5,
    autoretry_for=DATABASE_FAULTS,
    retry_backoff=1,
    retry_backoff_max=10,
)
def handle_fulfillment_event(self: Task, envelope: Any) -> str:
    """Record a fulfillment event (or a batch of them, in order), apply it to its
    order, push the orders' new states to websockets (one round of pushes: an order
    the batch moved twice, started then fulfilled, is pushed once, as it is now)."""
    batch = envelope if isinstance(envelope, list) else [envelope]
    outcomes: list[str] = []
    changed: dict[Any, Order] = {}
    for run in _runs(batch):
        for one, (outcome, order) in zip(run, _run_handle(run), strict=True):
            outcomes.append(outcome)
            if order is not None:
                changed.pop(order.pk, None)
                changed[order.pk] = order
            kind = one.get("type") if isinstance(one, dict) else None
            logger.info("event %s: %s", kind, outcome)
    broadcast.orders_push(changed.values())
    # On the task's span, for `traces`: which event this was and what it did.
    kinds = [one.get("type") if isinstance(one, dict) else None for one in batch]
    span_annotate(
        {
            EVENT_TYPE_ATTRIBUTE: ",".join(str(kind or "?") for kind in kinds),
            "orders.event.outcome": ",".join(outcomes),
        }
    )
    return ",".join(outcomes)


def _runs(batch: list[Any]) -> list[list[Any]]:
    """The batch cut into runs of consecutive events of one type (in order)."""
    runs: list[list[Any]] = []
    kinds: list[Any] = []
    for one in batch:
        kind = one.get("type") if isinstance(one, dict) else None
        if runs and kind is not None and kinds[-1] == kind:
            runs[-1].append(one)
        else:
            runs.append([one])
            kinds.append(kind)
    return runs


def _run_handle(run: list[Any]) -> list[tuple[str, Order | None]]:
    """A run of events of one type: in one statement when it can (life_cycle
    fulfillment_events_record), else one by one."""
    recorded = fulfillment_events_record(raws=run) if len(run) > 1 else None
    if recorded is None:
        return [_event_handle(one) for one in run]
    handled: list[tuple[str, Order | None]] = []
    for one, outcome in zip(run, recorded, strict=True):
        if outcome is None:
            logger.error("dropping an event for an unknown order: %s", one["data"])
            handled.append(("unknown-order", None))
        else:
            handled.append(("applied" if outcome.applied else "logged", outcome.order))
    return handled


def _event_handle(envelope: Any) -> tuple[str, Order | None]:
    """What recording the event did, and the order to push (None: nothing new)."""
    try:
        outcome = fulfillment_event_record(raw=envelope)
    except InvalidEvent as exc:
        logger.error("dropping an invalid event: %s", exc.detail)
        return "invalid", None
    except NotFound as exc:
        logger.error("dropping an event for an unknown order: %s", exc.detail)
        return "unknown-order", None
    if outcome.duplicate:
        return "duplicate", None
    return ("applied" if outcome.applied else "logged"), outcome.order
