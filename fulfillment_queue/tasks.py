"""Thin Celery tasks of the fulfillment queue: each calls one service."""

from __future__ import annotations

from typing import Any

from celery import Task
from django.conf import settings

from common import events
from common.tracing import carrier_context
from fulfillment_queue import services
from fulfillment_queue.celery_app import app


@app.task(bind=True, name=events.HANDLE_ORDER_ACCEPTED, max_retries=None)
def handle_order_accepted(self: Task, envelope: Any) -> str:
    """Fulfil one accepted order (or a batch: the relay's bundle); retry while the
    warehouse is busy; dead-letter."""
    publish = services.celery_publisher()
    if isinstance(envelope, list):
        return _batch_handle(self, envelope, publish=publish)
    attempts = self.request.retries + 1
    try:
        return services.order_fulfill(raw=envelope, publish=publish)
    except services.PermanentFailure as exc:
        services.dead_letter_record(
            raw=envelope, reason=str(exc), attempts=attempts, publish=publish
        )
        return "dead-lettered"
    except services.WarehouseBusy as exc:
        _retry_or_dead_letter(self, envelope, exc=exc, publish=publish)
        return "dead-lettered"


def _retry_or_dead_letter(
    task: Task, envelope: Any, *, exc: Exception, publish: events.Publisher
) -> None:
    """Retry one order later (raises celery's Retry), or dead-letter it: no more."""
    if task.request.retries >= settings.FULFILLMENT_MAX_RETRIES:
        services.dead_letter_record(
            raw=envelope,
            reason=str(exc),
            attempts=task.request.retries + 1,
            publish=publish,
        )
        return
    raise task.retry(
        args=[envelope],
        exc=exc,
        countdown=services.backoff_seconds(retries=task.request.retries),
        queue=settings.FULFILLMENT_QUEUE,
    ) from None


def _batch_handle(task: Task, batch: list[Any], *, publish: events.Publisher) -> str:
    """A batch: each order as a task of its own would go. The order the warehouse
    could not take retries alone; the ones after it go back to the queue at once."""
    report = services.orders_fulfill(
        raws=batch, publish=publish, budget_seconds=settings.FULFILLMENT_BATCH_SECONDS
    )
    # An order's dead letter or retry goes on in its own trace (a bundle's orders
    # each carry theirs), not in the message's.
    for raw, reason in report.refused:
        with carrier_context(_bundled_trace(raw)):
            services.dead_letter_record(
                raw=raw, reason=reason, attempts=1, publish=publish
            )
    if report.rest:
        publish(
            task=events.HANDLE_ORDER_ACCEPTED,
            envelope=report.rest if len(report.rest) > 1 else report.rest[0],
            queue=settings.FULFILLMENT_QUEUE,
        )
    if report.busy is not None:
        # A retry of a batch is never a batch: its retries count is the order's.
        with carrier_context(_bundled_trace(report.busy)):
            _retry_or_dead_letter(
                task,
                report.busy,
                exc=services.WarehouseBusy(report.busy_reason),
                publish=publish,
            )
    return ", ".join(report.fulfilled) or "none fulfilled"


def _bundled_trace(raw: Any) -> Any:
    return raw.get(events.BUNDLED_TRACE_KEY) if isinstance(raw, dict) else None
