"""Writes of the warehouse: admit, pick and pack, record; refuse when full.

Plain keyword-only functions named `<entity>_<action>` (HackSoftware styleguide).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction

from warehouse.admission import (
    AdmissionStats,
    admission_get,
    source_of,
)
from warehouse.exceptions import AtCapacity, OrderRefConflict
from warehouse.faults import (
    extra_latency_seconds,
    fault_gate_check,
    fault_refusals,
)
from warehouse.models import Fulfillment, Refusal
from warehouse.selectors import fulfillment_get_by_order_ref
from warehouse.validation import FulfillmentLine

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FulfillmentOutcome:
    fulfillment: Fulfillment
    # False when the order_ref was already fulfilled and this is its replay.
    created: bool


def _lines_key(lines: Sequence[FulfillmentLine]) -> list[tuple[str, int]]:
    # The same SKUs and quantities in another order are the same order.
    return sorted((line.sku, line.quantity) for line in lines)


def _stored_lines(fulfillment: Fulfillment) -> list[FulfillmentLine]:
    return [
        FulfillmentLine(sku=ln["sku"], quantity=ln["quantity"])
        for ln in fulfillment.lines
    ]


def _replay(
    existing: Fulfillment, lines: Sequence[FulfillmentLine]
) -> FulfillmentOutcome:
    if _lines_key(_stored_lines(existing)) != _lines_key(lines):
        raise OrderRefConflict(
            f"Order {existing.order_ref!r} was already fulfilled with other lines."
        )
    return FulfillmentOutcome(fulfillment=existing, created=False)


def refusal_record(*, order_ref: str, capacity: int) -> None:
    """Write the refusal's audit row. Losing it must not turn a 503 into a 500."""
    try:
        Refusal.objects.create(order_ref=order_ref, capacity=capacity)
    except DatabaseError:
        logger.exception("could not record the refusal of %s", order_ref)


def _pick_and_pack(
    *, order_ref: str, lines: Sequence[FulfillmentLine]
) -> FulfillmentOutcome:
    started = time.monotonic()
    time.sleep(settings.WAREHOUSE_HANDLING_MS / 1000 + extra_latency_seconds())
    handling_ms = round((time.monotonic() - started) * 1000)
    payload: list[dict[str, Any]] = [
        {"sku": line.sku, "quantity": line.quantity} for line in lines
    ]
    try:
        with transaction.atomic():
            fulfillment = Fulfillment.objects.create(
                order_ref=order_ref,
                lines=payload,
                units=sum(line.quantity for line in lines),
                handling_ms=handling_ms,
            )
    except IntegrityError:
        # A concurrent request for this order_ref committed first: answer with its row.
        existing = fulfillment_get_by_order_ref(order_ref=order_ref)
        if existing is None:
            raise
        return _replay(existing, lines)
    return FulfillmentOutcome(fulfillment=fulfillment, created=True)


def fulfillment_create(
    *, order_ref: str, lines: Sequence[FulfillmentLine]
) -> FulfillmentOutcome:
    """Fulfil an order once; a replay is answered from the database.

    Raises OrderRefConflict when order_ref was fulfilled with other lines, and
    AtCapacity (after recording a Refusal) when every packing slot is taken;
    WarehouseDown or InjectedFailure when a fault says so (warehouse/faults.py).
    """
    fault_gate_check()
    existing = fulfillment_get_by_order_ref(order_ref=order_ref)
    if existing is not None:
        # A replay takes no capacity: nothing is picked twice.
        return _replay(existing, lines)

    admission = admission_get()
    source = source_of(order_ref)
    if not admission.try_enter(source):
        refusal_record(order_ref=order_ref, capacity=admission.capacity)
        raise AtCapacity(
            f"The warehouse is packing {admission.capacity} orders, its capacity. "
            "Retry in a moment."
        )
    try:
        outcome = _pick_and_pack(order_ref=order_ref, lines=lines)
        if outcome.created:
            admission.record_fulfilled()
            logger.info("fulfilment of %s packed", order_ref)
        return outcome
    finally:
        admission.leave(source)


def stats_reset() -> AdmissionStats:
    """Zero the peak and counters of this process; fulfilments are kept."""
    fault_refusals(reset=True)
    return admission_get().reset()
