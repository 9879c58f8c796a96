"""The transactional outbox relay: publish committed events, mark them sent.

Crash-safe: a batch is taken with `SELECT ... FOR UPDATE SKIP LOCKED`, published, and
marked sent in the same transaction. A relay that dies after publishing and before
committing publishes that batch again on restart: consumers are idempotent (event ids,
the warehouse's order_ref), so at-least-once is enough.

Traced: each event is published inside an `outbox publish` span continuing the trace
context stored beside it (`Event.trace_context`). The first publish of an accepted
order is the accept request's CHILD, so the purchase is one trace from the click to
the warehouse; the Celery producer span inside it carries the context on in the
message's headers. Any other publish (a redelivery, `events replay`, hours later
perhaps) is a new trace LINKED to the stored context instead: as a child it would
stretch the purchase's waterfall over the hours in between. The relay's own polling
belongs to no trace. Accepted orders bundled in one message each have their span and
carry its context in their envelope (_publish_bundle; docs/decisions/0011).
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone
from opentelemetry import trace
from opentelemetry.trace import Span

from common import events
from common.tracing import (
    carrier_sampled,
    span_from_carrier,
    trace_carrier,
    untraced,
)
from orders_api.admission.redis_client import redis_get
from orders_api.live import broadcast
from orders_api.models import Event, Order, Sale
from orders_api.ordering.life_cycle import orders_mark_queued

logger = logging.getLogger(__name__)


def celery_publisher() -> events.Publisher:
    """The relay's publisher: the orders service's own Celery app, sending by name."""
    from orders_api.celery_app import app

    return events.celery_publisher(app)


def outbox_publish_batch(
    *, publish: events.Publisher, limit: int, bundle: int = 1
) -> int:
    """Publish up to `limit` pending events, oldest first; returns how many.

    Accepted orders, on their first publish, travel up to `bundle` to a message (a
    list of envelopes: one message, one round trip, one task for up to `bundle`
    orders; the fulfillment worker packs them one after the other), each sampled
    one in its own trace (_publish_bundle). Any other event travels alone, in its
    span, as before.
    """
    with transaction.atomic():
        batch = list(
            Event.objects.select_for_update(skip_locked=True)
            .filter(outbox_pending=True)
            .order_by("recorded_at")[:limit]
        )
        if not batch:
            return 0
        bundled = [e for e in batch if bundle > 1 and _bundles(e)]
        for event in batch:
            if bundle <= 1 or not _bundles(event):
                _publish_alone(event, publish=publish)
        for start in range(0, len(bundled), bundle):
            _publish_bundle(bundled[start : start + bundle], publish=publish)
        Event.objects.filter(pk__in=[e.pk for e in batch]).update(
            outbox_pending=False,
            published_at=timezone.now(),
            publish_count=F("publish_count") + 1,
        )
        accepted = [
            (e.order_id, e)
            for e in batch
            if e.type == events.ORDER_ACCEPTED and e.order_id is not None
        ]
        order_ids = [order_id for order_id, _ in accepted]
        orders_mark_queued(order_ids=order_ids)
    if accepted:
        # "queued" is pushed in the purchase's trace, on the first publish only.
        traces = {
            order_id: e.trace_context for order_id, e in accepted if not e.publish_count
        }
        broadcast.orders_push(
            Order.objects.filter(pk__in=order_ids).select_related("sale"),
            traces=traces,
        )
    return len(batch)


def _bundles(event: Event) -> bool:
    """May this event share a message? An accepted order's first publish, sampled
    or not; a redelivery or a replay goes alone, linked."""
    return event.type == events.ORDER_ACCEPTED and event.publish_count == 0


def _publish_attributes(event: Event, queue: str) -> dict[str, str | int]:
    return {
        "messaging.destination.name": queue,
        events.EVENT_ID_ATTRIBUTE: str(event.pk),
        events.EVENT_TYPE_ATTRIBUTE: event.type,
        "orders.event.publish_count": event.publish_count + 1,
    }


def _publish_alone(event: Event, *, publish: events.Publisher) -> None:
    task, queue = events.route_for(event.type)
    first = event.publish_count == 0 and event.type == events.ORDER_ACCEPTED
    with span_from_carrier(
        "outbox publish",
        event.trace_context,
        link=not first,
        attributes=_publish_attributes(event, queue),
    ):
        publish(task=task, envelope=event.envelope(), queue=queue)
        logger.info("published %s event %s to %s", event.type, event.pk, queue)


def _publish_bundle(bundle: list[Event], *, publish: events.Publisher) -> None:
    """One message for several accepted orders. Each sampled purchase has its
    `outbox publish` span, the accept request's child, and its envelope carries
    that span's context (BUNDLED_TRACE_KEY; an unsampled one beside it a context
    that says "not sampled"): the fulfillment worker continues each purchase's
    trace from it. The message itself is sent in the last sampled one's span (its
    headers, Celery's producer span); with none sampled, untraced and saying so in
    its headers (a message with no trace context would start a trace in the
    worker, where a root is sampled), its envelopes as they are."""
    task, queue = events.route_for(events.ORDER_ACCEPTED)
    envelopes = [event.envelope() for event in bundle]
    sampled = [carrier_sampled(event.trace_context) for event in bundle]
    own: list[Span | None] = []  # each order's span, to log its line in its trace
    with ExitStack() as spans:
        if not any(sampled):
            spans.enter_context(untraced())
        for event, envelope, traced in zip(bundle, envelopes, sampled, strict=True):
            if traced:
                attributes = _publish_attributes(event, queue)
                own.append(
                    spans.enter_context(
                        span_from_carrier(
                            "outbox publish", event.trace_context, attributes=attributes
                        )
                    )
                )
                envelope[events.BUNDLED_TRACE_KEY] = trace_carrier()
            else:
                own.append(None)
                if any(sampled):
                    with untraced():
                        envelope[events.BUNDLED_TRACE_KEY] = trace_carrier()
        publish(
            task=task,
            envelope=envelopes[0] if len(bundle) == 1 else envelopes,
            queue=queue,
        )
        for event, span in zip(bundle, own, strict=True):
            with untraced() if span is None else trace.use_span(span):
                logger.info("published %s event %s to %s", event.type, event.pk, queue)


def orders_tally(*, limit: int) -> int:
    """Fold accepted orders into their sale's units_sold (CHECK: <= allocated)."""
    with transaction.atomic():
        ids = list(
            Order.objects.select_for_update(skip_locked=True)
            .filter(tallied=False)
            .values_list("pk", flat=True)[:limit]
        )
        if not ids:
            return 0
        per_sale = (
            Order.objects.filter(pk__in=ids)
            .values("sale_id")
            .annotate(units=Sum("quantity"))
        )
        for row in per_sale:
            Sale.objects.filter(pk=row["sale_id"]).update(
                units_sold=F("units_sold") + row["units"]
            )
        Order.objects.filter(pk__in=ids).update(tallied=True)
    return len(ids)


# Kombu keeps a queue's messages of priority p > 0 under "<queue>\x06\x16<p>".
_PRIORITY_KEYS = ("", "\x06\x163", "\x06\x166", "\x06\x169")
REDELIVER_BATCH = 1000


def queue_depth(*, queue: str) -> int:
    """Messages waiting on a Celery queue in the broker (Redis lists)."""
    pipe = redis_get().pipeline(transaction=False)
    for suffix in _PRIORITY_KEYS:
        pipe.llen(queue + suffix)
    return sum(int(n) for n in pipe.execute())


def orders_redeliver(*, older_than: timedelta, queue_bound: int | None = None) -> int:
    """Publish again the accepted event of orders with no word from the queue.

    A message can be lost with the broker's data (Redis flushed or restarted); the
    warehouse's order_ref makes the second delivery harmless. During a long backlog
    (workers stopped or slow) the "stuck" orders are mostly still waiting in the
    queue: redelivering them all every pass would only stack copies behind them. So
    a pass never takes the queue above `queue_bound` messages (it redelivers at most
    the room left, none when the queue is already that deep): a lost message is
    found again once the backlog drains, and the queue never grows by redeliveries.
    (Waiting for the broker's visibility timeout instead would not bound a backlog,
    and would leave a message lost with Redis's data unsent for an hour.)
    """
    if queue_bound is None:
        queue_bound = settings.ORDERS_REDELIVER_QUEUE_BOUND
    room = min(
        REDELIVER_BATCH, queue_bound - queue_depth(queue=settings.FULFILLMENT_QUEUE)
    )
    if room <= 0:
        return 0
    cutoff = timezone.now() - older_than
    stuck = list(
        Order.objects.filter(
            status__in=[
                Order.Status.ACCEPTED,
                Order.Status.QUEUED,
                Order.Status.IN_WAREHOUSE,
            ],
            updated_at__lt=cutoff,
        )
        .order_by("updated_at")
        .values_list("pk", flat=True)[:room]
    )
    if not stuck:
        return 0
    with transaction.atomic():
        Event.objects.filter(
            order_id__in=stuck, type=events.ORDER_ACCEPTED, outbox_pending=False
        ).update(outbox_pending=True)
        Order.objects.filter(pk__in=stuck).update(updated_at=timezone.now())
    logger.warning("re-publishing %d orders with no word from the queue", len(stuck))
    return len(stuck)


def events_replay(*, since: Any, types: list[str] | None = None) -> int:
    """Mark every event since `since` for publishing again (the relay sends them)."""
    selected = Event.objects.filter(time__gte=since)
    if types:
        selected = selected.filter(type__in=types)
    return selected.update(outbox_pending=True)


def relay_settings() -> dict[str, Any]:
    return {
        "batch": settings.ORDERS_RELAY_BATCH,
        "bundle": settings.ORDERS_RELAY_BUNDLE,
        "idle": settings.ORDERS_RELAY_IDLE_SECONDS,
        "gather": settings.ORDERS_RELAY_GATHER_SECONDS,
        "redeliver": timedelta(seconds=settings.ORDERS_REDELIVER_SECONDS),
        "queue_bound": settings.ORDERS_REDELIVER_QUEUE_BOUND,
        "reconcile": settings.ORDERS_RECONCILE_SECONDS,
        "sweep": settings.ORDERS_SWEEP_SECONDS,
    }
