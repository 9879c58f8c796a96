"""The lean accept: one Redis round trip, one PostgreSQL transaction, the answer.

    Redis (admission/accept.py): the client's rate limit, its Idempotency-Key and
        the sale's counter in one Lua call. A refusal (sold out, not open) is
        answered, and stored under the key, from Redis alone: no database.
    PostgreSQL: one durable transaction writes the order, its outbox event and the
        key's stored answer (completed at once: no claim row, no UPDATE).
    Redis again, after the commit: the key marked accepted, the relay woken.

Anything out of the ordinary goes the long way (ordering/services.py order_place
under ordering/idempotency.py idempotent_call): a counter missing or rebuilt under
the request, a key the database already holds (a replay whose Redis mark is gone,
a claim left by a dead request, an expired key not yet swept). That way is the
reference; this one only skips what the common case does not need.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from common.errors import InvalidRequest
from common.redis_client import REDIS_FAULTS
from common.tracing.core import span_annotate
from orders_api.admission import accept as redis_accept
from orders_api.admission import counter, scripts
from orders_api.exceptions import (
    IdempotencyInProgress,
    IdempotencyKeyReused,
    RateLimited,
    SaleNotOpen,
    SoldOut,
)
from orders_api.ordering.accept_rows import accept_rows_insert, accept_rows_params
from orders_api.ordering.idempotency import StoredResponse
from orders_api.ordering.presentation import order_accepted_body
from orders_api.ordering.services import order_row_new
from orders_api.sales.selectors import sale_snapshot

logger = logging.getLogger(__name__)

KeyRef = redis_accept.KeyRef


@dataclass(frozen=True)
class Accepted:
    """The answer: the stored response (no token in it), replayed or not; or None
    when the accept must go the long way."""

    response: StoredResponse
    replayed: bool


def _admission_note(where: str) -> None:
    """Say on the request's span where Redis admitted it: the ASGI fast lane runs
    before Django and its tracing, so its Lua call has no span in the trace."""
    span_annotate({"orders.admission": where})


class _LongWay(Exception):
    """This request is not the common case: order_place decides."""


def order_accept(
    *,
    slug: str,
    quantity: int,
    email: str,
    client: str,
    trace_id: str,
    key: KeyRef | None,
    pre: Any = None,
) -> Accepted | None:
    """Accept an order the short way, or None: the caller goes the long way (the
    rate limit already counted this attempt). Raises RateLimited, SoldOut,
    SaleNotOpen, IdempotencyKeyReused, IdempotencyInProgress, InvalidRequest.

    `pre`: the ASGI fast lane's verdict for this very request (web/fast_lane.py
    PreAdmission), taken over instead of asking Redis again."""
    maximum = settings.MAX_QUANTITY_PER_ORDER
    if isinstance(quantity, bool) or not 1 <= quantity <= maximum:
        raise InvalidRequest(f"Quantity must be between 1 and {maximum}.")
    if pre is not None and pre.matches(
        slug=slug, units=quantity, client=client, key=key
    ):
        pre.used = True
        verdict = pre.verdict
        _admission_note("fast-lane")
    else:
        verdict = redis_accept.accept_admit(
            slug=slug, units=quantity, client=client, key=key
        )
        _admission_note("request")
    if verdict.code == scripts.RATE_LIMITED:
        raise RateLimited(
            "Too many orders from you at once; try again shortly.",
            retry_after=verdict.retry_after,
        )
    if verdict.held is not None:
        return _from_held(verdict.held, key=key)
    if verdict.code in (scripts.SOLD_OUT, scripts.CLOSED):
        body = verdict.body or {}
        refusal = SoldOut if verdict.code == scripts.SOLD_OUT else SaleNotOpen
        raise refusal(str(body.get("detail", "")))
    if not verdict.admitted:
        return None  # the counter is missing: order_place rebuilds it
    ticket = counter.Ticket(
        slug=slug,
        units=quantity,
        generation=verdict.generation,
        sale_id=verdict.sale_id,
    )
    try:
        body = _order_commit(
            ticket=ticket, quantity=quantity, email=email, trace_id=trace_id, key=key
        )
    except (_LongWay, IntegrityError):
        # Rolled back: a rebuilt counter, or the key in the database already.
        _give_back(ticket=ticket, key=key)
        return None
    except BaseException:
        _give_back(ticket=ticket, key=key)
        raise
    try:
        redis_accept.accept_done(key=key)
    except REDIS_FAULTS:
        # Committed: a replay finds the answer in the database once the lease ends.
        logger.warning("accepted order %s: Redis not told; the relay polls", body)
    return Accepted(StoredResponse(202, body), replayed=False)


def _from_held(held: redis_accept.Held, *, key: KeyRef | None) -> Accepted | None:
    if key is None or held.state == redis_accept.ACCEPTED:
        # The stored answer is the database's (and whether the key has expired).
        return None
    if held.fingerprint != key.fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used with another request body."
        )
    if held.state == redis_accept.PENDING:
        raise IdempotencyInProgress(
            "A request with this Idempotency-Key is still being processed."
        )
    return Accepted(StoredResponse(held.status, held.body), replayed=True)


def _give_back(*, ticket: counter.Ticket, key: KeyRef | None) -> None:
    redis_accept.accept_give_back(
        slug=ticket.slug, units=ticket.units, generation=ticket.generation, key=key
    )


def _order_commit(
    *,
    ticket: counter.Ticket,
    quantity: int,
    email: str,
    trace_id: str,
    key: KeyRef | None,
) -> dict[str, Any]:
    """The one transaction: order, outbox event, the key's answer (one statement,
    ordering/accept_rows.py), then the counter's check. Its body."""
    sale = sale_snapshot(sale_id=ticket.sale_id)
    if sale is None:
        raise _LongWay
    order = order_row_new(
        order_id=uuid.uuid4(),
        sale=sale,
        quantity=quantity,
        email=email,
        trace_id=trace_id,
    )
    body = order_accepted_body(order=order, token=None)
    with transaction.atomic(durable=True):
        accept_rows_insert(
            accept_rows_params(order=order, key=key, body=body, trace_id=trace_id)
        )
        if not counter.counter_generation_holds(ticket=ticket):
            raise _LongWay
    # The same line as the long way's (services.order_place): `traces show` finds
    # each accept in the orders log by it.
    logger.info("order %s accepted: %d of %s", order.number, quantity, ticket.slug)
    return body
