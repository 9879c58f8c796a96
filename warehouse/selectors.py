"""Reads of the warehouse. Plain keyword-only functions named `<entity>_<action>`."""

from __future__ import annotations

from datetime import datetime

from warehouse.admission import AdmissionStats, admission_get
from warehouse.models import Fulfillment


def fulfillment_get_by_order_ref(*, order_ref: str) -> Fulfillment | None:
    return Fulfillment.objects.filter(order_ref=order_ref).first()


def fulfillment_list(
    *, since: datetime, after_id: int, limit: int
) -> list[Fulfillment]:
    """Fulfilments recorded at or after `since`, by id, after `after_id`."""
    return list(
        Fulfillment.objects.filter(created_at__gte=since, pk__gt=after_id).order_by(
            "pk"
        )[:limit]
    )


def stats_get() -> AdmissionStats:
    """This process's gate and counters since the last reset (see admission.py)."""
    return admission_get().snapshot()
