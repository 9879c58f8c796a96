"""Who is asking: the client key of the rate limit, and the orders of a session."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

ORDERS_SESSION_KEY = "orders"
SESSION_ORDERS_KEPT = 50


def client_key(request: HttpRequest | Any) -> str:
    """The client's IP; behind the edge, the address the edge saw (X-Forwarded-For)."""
    if settings.ORDERS_TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1][:64]
    return str(request.META.get("REMOTE_ADDR") or "unknown")[:64]


def session_orders(request: HttpRequest | Any) -> list[str]:
    session = getattr(request, "session", None)
    if session is None:
        return []
    return [str(value) for value in session.get(ORDERS_SESSION_KEY, [])]


def session_remember_order(request: HttpRequest, order_id: Any) -> None:
    """Let the session that placed an order see it without the token."""
    ids = [i for i in session_orders(request) if i != str(order_id)]
    ids.append(str(order_id))
    request.session[ORDERS_SESSION_KEY] = ids[-SESSION_ORDERS_KEPT:]
