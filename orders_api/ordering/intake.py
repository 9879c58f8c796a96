"""THE entry point for placing an order, for the JSON API and the buy-now form alike.

One attempt: count it against the client's rate limit, place the order in the
request's trace, once per Idempotency-Key (a replay gets the first response back).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common import events
from orders_api.admission.rate_limit import rate_limit_check
from orders_api.ordering.idempotency import StoredResponse, idempotent_call
from orders_api.ordering.presentation import order_accepted_body
from orders_api.ordering.services import order_place


@dataclass(frozen=True)
class IdempotencyClaim:
    """Which Idempotency-Key an attempt carries, and the fingerprint of its body."""

    scope: str
    key: str
    fingerprint: str


@dataclass(frozen=True)
class Submitted:
    response: StoredResponse
    # The response is the stored one of an earlier attempt with the same key.
    replayed: bool


def order_submit(
    *,
    slug: str,
    quantity: int,
    email: str,
    client: str,
    traceparent: str | None,
    idempotency: IdempotencyClaim | None,
) -> Submitted:
    """Place an order for `client` (its rate-limit key); the 202 body, or the stored
    response of a replay. Raises RateLimited and what order_place raises."""
    rate_limit_check(client=client)
    trace_id = events.trace_id_of_request(traceparent)

    def place(record: Any) -> StoredResponse:
        placed = order_place(
            slug=slug,
            quantity=quantity,
            email=email,
            trace_id=trace_id,
            idempotency=record,
        )
        return StoredResponse(
            202, order_accepted_body(order=placed.order, token=placed.token)
        )

    if idempotency is None:
        return Submitted(response=place(None), replayed=False)
    stored, replayed = idempotent_call(
        scope=idempotency.scope,
        key=idempotency.key,
        fingerprint=idempotency.fingerprint,
        call=place,
    )
    return Submitted(response=stored, replayed=replayed)
