"""Thin Celery tasks of the fulfillment queue: each calls one service."""

from __future__ import annotations

from typing import Any

from celery import Task
from django.conf import settings

from common import events
from fulfillment_queue import services
from fulfillment_queue.celery_app import app


@app.task(bind=True, name=events.HANDLE_ORDER_ACCEPTED, max_retries=None)
def handle_order_accepted(self: Task, envelope: Any) -> str:
    """Fulfil one accepted order; retry while the warehouse is busy; dead-letter."""
    publish = services.celery_publisher()
    attempts = self.request.retries + 1
    try:
        return services.order_fulfill(raw=envelope, publish=publish)
    except services.PermanentFailure as exc:
        services.dead_letter_record(
            raw=envelope, reason=str(exc), attempts=attempts, publish=publish
        )
        return "dead-lettered"
    except services.WarehouseBusy as exc:
        if self.request.retries >= settings.FULFILLMENT_MAX_RETRIES:
            services.dead_letter_record(
                raw=envelope, reason=str(exc), attempts=attempts, publish=publish
            )
            return "dead-lettered"
        raise self.retry(
            exc=exc,
            countdown=services.backoff_seconds(retries=self.request.retries),
            queue=settings.FULFILLMENT_QUEUE,
        ) from None
