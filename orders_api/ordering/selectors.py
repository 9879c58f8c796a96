"""Reads of orders: one order for its owner (session or access token), its journey."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Iterable

from django.db import DatabaseError
from django.db.models import QuerySet
from django.utils.crypto import salted_hmac

from common.errors import Forbidden, NotAuthenticated, NotFound
from orders_api.models import Event, Order


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def order_access_token(*, order_id: uuid.UUID | str) -> str:
    """The order's access token, derived from its id with the secret key: nothing
    stores it (the order keeps its hash), and a replay of the Idempotency-Key that
    placed the order derives it again."""
    digest = salted_hmac(
        "orders.access-token", str(order_id), algorithm="sha256"
    ).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode()


def order_get(*, order_id: uuid.UUID | str) -> Order:
    try:
        return Order.objects.select_related("sale").get(pk=order_id)
    except (Order.DoesNotExist, ValueError, DatabaseError):
        raise NotFound("No such order.") from None


def order_get_visible(
    *, order_id: uuid.UUID | str, token: str | None, session_orders: Iterable[str]
) -> Order:
    """An order for its owner's session or the holder of its access token.

    404 unknown, 401 neither session nor token, 403 a wrong token.
    """
    order = order_get(order_id=order_id)
    order_visibility_check(order=order, token=token, session_orders=session_orders)
    return order


def order_visibility_check(
    *, order: Order, token: str | None, session_orders: Iterable[str]
) -> None:
    """Nothing for its owner's session or the holder of its access token; else 401
    (neither) or 403 (a wrong token)."""
    if str(order.pk) in set(session_orders):
        return
    if not token:
        raise NotAuthenticated(
            "Show the order's access token (?token=...) or use the session that "
            "placed it."
        )
    if not hmac.compare_digest(token_hash(token), order.access_token_hash):
        raise Forbidden("That access token is not this order's.")


def order_journey(*, order: Order) -> QuerySet[Event]:
    return Event.objects.filter(order=order).order_by("time", "recorded_at")
