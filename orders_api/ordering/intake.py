"""THE entry point for placing an order, for the JSON API and the buy-now form alike.

One attempt: count it against the client's rate limit, place the order in the
request's trace, once per client and Idempotency-Key (a replay gets the first
response back, its access token derived again: the stored one has none). The lean
accept (ordering/accept.py) first; what it hands back goes the long way
(order_place under idempotent_call).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common import events
from orders_api.ordering.accept import KeyRef, order_accept
from orders_api.ordering.idempotency import StoredResponse, idempotent_call
from orders_api.ordering.presentation import links_with_token, order_accepted_body
from orders_api.ordering.selectors import order_access_token
from orders_api.ordering.services import order_place


@dataclass(frozen=True)
class IdempotencyClaim:
    """Which Idempotency-Key an attempt carries, whose it is (ordering.clients
    idempotency_client) and the fingerprint of its body."""

    scope: str
    client: str
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
    pre: Any = None,
) -> Submitted:
    """Place an order for `client` (its rate-limit key); the 202 body, or the stored
    response of a replay. Raises RateLimited and what order_place raises."""
    trace_id = events.trace_id_of_request(traceparent)
    accepted = order_accept(
        slug=slug,
        quantity=quantity,
        email=email,
        client=client,
        trace_id=trace_id,
        key=None
        if idempotency is None
        else KeyRef(
            scope=idempotency.scope,
            client=idempotency.client,
            key=idempotency.key,
            fingerprint=idempotency.fingerprint,
        ),
        pre=pre,
    )
    if accepted is not None:
        return Submitted(
            response=_with_access_token(accepted.response), replayed=accepted.replayed
        )

    def place(record: Any) -> StoredResponse:
        placed = order_place(
            slug=slug,
            quantity=quantity,
            email=email,
            trace_id=trace_id,
            idempotency=record,
        )
        # As its key stores it: the token is added to the answer, below.
        return StoredResponse(202, order_accepted_body(order=placed.order, token=None))

    if idempotency is None:
        stored, replayed = place(None), False
    else:
        stored, replayed = idempotent_call(
            scope=idempotency.scope,
            client=idempotency.client,
            key=idempotency.key,
            fingerprint=idempotency.fingerprint,
            call=place,
        )
    return Submitted(response=_with_access_token(stored), replayed=replayed)


def _with_access_token(stored: StoredResponse) -> StoredResponse:
    """An accepted order's answer with its access token, first time or replayed."""
    if stored.status != 202:
        return stored
    token = order_access_token(order_id=stored.body["id"])
    return StoredResponse(202, links_with_token(stored.body, token=token))
