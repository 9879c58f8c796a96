"""Placing an order: admitted in Redis, written in one durable transaction.

Plain keyword-only functions named `<entity>_<action>` (HackSoftware styleguide).
Callers go through ordering.intake.order_submit (rate limit, idempotency, trace).
"""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from common import events
from common.errors import InvalidRequest, NotFound
from orders_api.admission import counter, scripts
from orders_api.exceptions import SaleNotOpen, ServiceBusy, SoldOut
from orders_api.models import IdempotencyKey, Order, Sale
from orders_api.ordering.event_log import event_log_write
from orders_api.ordering.idempotency import StoredResponse, idempotency_complete
from orders_api.ordering.presentation import order_accepted_body
from orders_api.ordering.selectors import order_access_token, token_hash
from orders_api.outbox.wakeup import outbox_kick
from orders_api.sales import selectors as sale_selectors
from orders_api.sales.services import sale_counter_rebuild_if_missing

logger = logging.getLogger(__name__)

_NUMBER_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
# How often one request may meet a missing or rebuilt counter before it gives up.
ADMIT_ATTEMPTS = 40


@dataclass(frozen=True)
class PlacedOrder:
    order: Order
    token: str


class _Readmit(Exception):
    """The counter that admitted the order was rebuilt before it was written."""


def _order_number() -> str:
    return "MU-" + "".join(secrets.choice(_NUMBER_ALPHABET) for _ in range(10))


def units_admit(*, sale: Sale, units: int) -> counter.Ticket:
    """Take `units` from the sale's counter (rebuilt when missing), or SoldOut,
    SaleNotOpen, ServiceBusy. The caller writes its rows and checks the ticket's
    generation in one transaction, or gives the ticket back (counter_release)."""
    for _ in range(ADMIT_ATTEMPTS):
        verdict = counter.counter_admit(slug=sale.slug, units=units)
        if verdict.admitted:
            return counter.Ticket(
                slug=sale.slug,
                units=units,
                generation=verdict.generation,
                sale_id=verdict.sale_id,
            )
        if verdict.code == scripts.SOLD_OUT:
            raise SoldOut(f"Sorry, the {sale.name} is sold out.")
        if verdict.code == scripts.CLOSED:
            raise SaleNotOpen(f"The {sale.name} sale is not open.")
        sale_counter_rebuild_if_missing(sale=sale)
    raise ServiceBusy("The sale is busy; please try again in a moment.")


def _sale_for_order(*, slug: str, fresh: bool = False) -> Sale:
    sale = (
        sale_selectors.sale_current_cached(slug=slug, fresh=True)
        if fresh
        else sale_selectors.sale_current_open_cached(slug=slug)
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
    `orders.order-accepted` event (the outbox) and the idempotency response (without
    the access token); the relay publishes the event after commit. Raises SoldOut,
    SaleNotOpen, NotFound, IdempotencyClaimLost.
    """
    maximum = settings.MAX_QUANTITY_PER_ORDER
    if isinstance(quantity, bool) or not 1 <= quantity <= maximum:
        raise InvalidRequest(f"Quantity must be between 1 and {maximum}.")
    sale = _sale_for_order(slug=slug)
    for _ in range(ADMIT_ATTEMPTS):
        ticket = units_admit(sale=sale, units=quantity)
        if ticket.sale_id != sale.pk:
            # The cached sale is not the one the counter belongs to: re-read it.
            counter.counter_release(ticket=ticket)
            sale = _sale_for_order(slug=slug, fresh=True)
            continue
        order_id = uuid.uuid4()
        token = order_access_token(order_id=order_id)
        try:
            with transaction.atomic(durable=True):
                order = order_row_new(
                    order_id=order_id,
                    sale=sale,
                    quantity=quantity,
                    email=email,
                    trace_id=trace_id,
                )
                order.save(force_insert=True)
                accepted_event_write(order=order, trace_id=trace_id)
                if not counter.counter_generation_holds(ticket=ticket):
                    raise _Readmit
                if idempotency is not None:
                    # Committed with the order or not at all: a claim taken over
                    # (this attempt outlived its lease) raises, and no order is.
                    body = order_accepted_body(order=order, token=None)
                    idempotency_complete(
                        record=idempotency, response=StoredResponse(202, body)
                    )
                transaction.on_commit(outbox_kick)
        except _Readmit:
            continue  # the rebuilt counter did not count these units: no release
        except BaseException:
            counter.counter_release(ticket=ticket)
            raise
        logger.info("order %s accepted: %d of %s", order.number, quantity, slug)
        return PlacedOrder(order=order, token=token)
    raise ServiceBusy("The sale is busy; please try again in a moment.")


def order_row_new(
    *,
    order_id: uuid.UUID,
    sale: Sale,
    quantity: int,
    email: str,
    trace_id: str,
) -> Order:
    """The order's row, not yet saved; its access token is derived from its id,
    only the token's hash is kept."""
    token = order_access_token(order_id=order_id)
    now = timezone.now()
    return Order(
        id=order_id,
        number=_order_number(),
        sale=sale,
        sku=sale.sku,
        name=sale.name,
        unit_price=sale.price,
        quantity=quantity,
        total=sale.price * quantity,
        email=email,
        status=Order.Status.ACCEPTED,
        access_token_hash=token_hash(token),
        trace_id=trace_id,
        created_at=now,
        updated_at=now,
    )


def accepted_envelope(*, order: Order, trace_id: str) -> events.Envelope:
    """The order's `orders.order-accepted` event."""
    return events.envelope_new(
        type_=events.ORDER_ACCEPTED,
        source=events.ORDERS_SOURCE,
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


def accepted_event_write(*, order: Order, trace_id: str) -> None:
    """The order's `orders.order-accepted` event: its outbox row."""
    envelope = accepted_envelope(order=order, trace_id=trace_id)
    # The relay publishes inside this request's trace (see outbox/relay.py).
    event_log_write(envelope=envelope, order=order, outbox_pending=True)
