"""Writes of the orders service: placing orders, and their life cycle from events.

Plain keyword-only functions named `<entity>_<action>` (HackSoftware styleguide).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from common.tracing import trace_carrier
from orders_api import admission, events, sales, selectors
from orders_api.exceptions import (
    InvalidEvent,
    InvalidInput,
    InvalidOrderStatus,
    NotFound,
    SaleNotOpen,
    ServiceBusy,
    SoldOut,
)
from orders_api.idempotency import StoredResponse, idempotency_complete
from orders_api.models import Event, IdempotencyKey, Order, Sale

logger = logging.getLogger(__name__)

_NUMBER_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
# How often one request may meet a missing or rebuilt counter before it gives up.
ADMIT_ATTEMPTS = 40

S = Order.Status
LEGAL_TRANSITIONS: dict[str, frozenset[str]] = {
    S.ACCEPTED: frozenset({S.QUEUED, S.IN_WAREHOUSE, S.FULFILLED, S.FAILED}),
    S.QUEUED: frozenset({S.IN_WAREHOUSE, S.FULFILLED, S.FAILED}),
    S.IN_WAREHOUSE: frozenset({S.FULFILLED, S.FAILED}),
    # A dead-lettered order that is replayed goes back to the warehouse.
    S.FAILED: frozenset({S.IN_WAREHOUSE, S.FULFILLED}),
    S.FULFILLED: frozenset(),
}
EVENT_STATUS: dict[str, str] = {
    events.ORDER_STARTED: S.IN_WAREHOUSE,
    events.ORDER_FULFILLED: S.FULFILLED,
    events.ORDER_FAILED: S.FAILED,
}


@dataclass(frozen=True)
class PlacedOrder:
    order: Order
    token: str


class _Readmit(Exception):
    """The counter that admitted the order was rebuilt before it was written."""


def _order_number() -> str:
    return "MU-" + "".join(secrets.choice(_NUMBER_ALPHABET) for _ in range(10))


def order_links(*, order: Order, token: str | None) -> dict[str, str]:
    query = f"?token={token}" if token else ""
    page = reverse(
        "orders:order-page",
        kwargs={
            "category": order.sale.category_slug,
            "slug": order.sale.slug,
            "order_id": order.pk,
        },
    )
    return {
        "status_url": reverse("orders:order-detail", args=[order.pk]) + query,
        "ws_url": f"/ws/orders/{order.pk}/{query}",
        "page_url": page + query,
    }


def order_accepted_body(*, order: Order, token: str) -> dict[str, Any]:
    return {
        "id": str(order.pk),
        "number": order.number,
        "status": order.status,
        **order_links(order=order, token=token),
    }


def _admit(*, sale: Sale, units: int) -> admission.Ticket:
    for _ in range(ADMIT_ATTEMPTS):
        verdict = admission.counter_admit(slug=sale.slug, units=units)
        if verdict.admitted:
            return admission.Ticket(
                slug=sale.slug,
                units=units,
                generation=verdict.generation,
                sale_id=verdict.sale_id,
            )
        if verdict.code == admission.SOLD_OUT:
            raise SoldOut(f"Sorry, the {sale.name} is sold out.")
        if verdict.code == admission.CLOSED:
            raise SaleNotOpen(f"The {sale.name} sale is not open.")
        sales.sale_counter_rebuild_if_missing(sale=sale)
    raise ServiceBusy("The sale is busy; please try again in a moment.")


def _sale_for_order(*, slug: str, fresh: bool = False) -> Sale:
    sale = (
        selectors.sale_current_cached(slug=slug, fresh=True)
        if fresh
        else selectors.sale_current_open_cached(slug=slug)
    )
    if sale is None:
        raise NotFound("There is no sale of that product.")
    if sale.status != Sale.Status.OPEN:
        raise SaleNotOpen(f"The {sale.name} sale is not open.")
    return sale


def order_place(
    *,
    slug: str,
    quantity: int,
    email: str,
    trace_id: str,
    idempotency: IdempotencyKey | None = None,
) -> PlacedOrder:
    """Accept an order against the sale's allocation, fast and without row locks.

    Redis admits the units atomically; one durable transaction writes the order, its
    `orders.order-accepted` event (the outbox) and the idempotency response; the relay
    publishes the event after commit. Raises SoldOut, SaleNotOpen, NotFound.
    """
    maximum = settings.MAX_QUANTITY_PER_ORDER
    if isinstance(quantity, bool) or not 1 <= quantity <= maximum:
        raise InvalidInput(f"Quantity must be between 1 and {maximum}.")
    sale = _sale_for_order(slug=slug)
    for _ in range(ADMIT_ATTEMPTS):
        ticket = _admit(sale=sale, units=quantity)
        if ticket.sale_id != sale.pk:
            # The cached sale is not the one the counter belongs to: re-read it.
            admission.counter_release(ticket=ticket)
            sale = _sale_for_order(slug=slug, fresh=True)
            continue
        token = secrets.token_urlsafe(24)
        try:
            with transaction.atomic(durable=True):
                order = _order_write(
                    sale=sale,
                    quantity=quantity,
                    email=email,
                    token=token,
                    trace_id=trace_id,
                )
                _accepted_event_write(order=order, trace_id=trace_id)
                if not admission.counter_generation_holds(ticket=ticket):
                    raise _Readmit
                if idempotency is not None:
                    body = order_accepted_body(order=order, token=token)
                    idempotency_complete(
                        record=idempotency, response=StoredResponse(202, body)
                    )
                transaction.on_commit(admission.outbox_kick)
        except _Readmit:
            continue  # the rebuilt counter did not count these units: no release
        except BaseException:
            admission.counter_release(ticket=ticket)
            raise
        return PlacedOrder(order=order, token=token)
    raise ServiceBusy("The sale is busy; please try again in a moment.")


def _order_write(
    *, sale: Sale, quantity: int, email: str, token: str, trace_id: str
) -> Order:
    return Order.objects.create(
        number=_order_number(),
        sale=sale,
        sku=sale.sku,
        name=sale.name,
        unit_price=sale.price,
        quantity=quantity,
        total=sale.price * quantity,
        email=email,
        status=Order.Status.ACCEPTED,
        access_token_hash=selectors.token_hash(token),
        trace_id=trace_id,
    )


def _accepted_event_write(*, order: Order, trace_id: str) -> Event:
    envelope = events.envelope_new(
        type_=events.ORDER_ACCEPTED,
        trace_id=trace_id,
        data={
            "order_id": str(order.pk),
            "order_number": order.number,
            "sale": order.sale.slug,
            "sku": order.sku,
            "name": order.name,
            "quantity": order.quantity,
            "unit_price": str(order.unit_price),
            "total": str(order.total),
        },
    )
    return Event.objects.create(
        id=envelope.id,
        type=envelope.type,
        source=envelope.source,
        time=envelope.time,
        trace_id=envelope.trace_id,
        version=envelope.version,
        data=envelope.data,
        order=order,
        outbox_pending=True,
        # The relay publishes inside this request's trace (see outbox.py).
        trace_context=trace_carrier(),
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
    """
    envelope = events.envelope_parse(raw)
    target = EVENT_STATUS.get(envelope.type)
    number = envelope.data.get("order_number")
    if target is None or not isinstance(number, str):
        raise InvalidEvent(f"Not a fulfillment event: {envelope.type}.")
    try:
        with transaction.atomic(durable=True):
            order = Order.objects.select_for_update().filter(number=number).first()
            if order is None:
                raise NotFound(f"No order {number!r}.")
            if Event.objects.filter(pk=envelope.id).exists():
                return EventOutcome(order=order, applied=False, duplicate=True)
            applied = True
            try:
                order_status_change(order=order, status=target)
            except InvalidOrderStatus as exc:
                applied = False
                logger.info("event %s not applied: %s", envelope.id, exc.detail)
            Event.objects.create(
                id=envelope.id,
                type=envelope.type,
                source=envelope.source,
                time=envelope.time,
                trace_id=envelope.trace_id,
                version=envelope.version,
                data=envelope.data,
                order=order,
                applied=applied,
                # The task's context: a replay of this event links back to it.
                trace_context=trace_carrier(),
            )
    except IntegrityError:
        # The same event recorded concurrently by another worker: a duplicate.
        return EventOutcome(order=None, applied=False, duplicate=True)
    return EventOutcome(order=order, applied=applied, duplicate=False)


def orders_mark_queued(*, order_ids: list[Any]) -> int:
    """accepted → queued for orders whose event the relay has handed to the queue."""
    return Order.objects.filter(pk__in=order_ids, status=Order.Status.ACCEPTED).update(
        status=Order.Status.QUEUED, updated_at=timezone.now()
    )
