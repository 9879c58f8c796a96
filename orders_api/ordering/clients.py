"""Who is asking: the client key of the rate limit, the orders of a session, and
whose Idempotency-Keys a request's are."""

from __future__ import annotations

import re
import secrets
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.crypto import salted_hmac

from orders_api.exceptions import ClientSecretInvalid

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


# Idempotency-Keys are a client's own (docs/guides/orders.md#idempotency): the JSON
# API's client may name itself by a secret of its own; a browser is its session.
CLIENT_SECRET_HEADER = "Orders-Client-Secret"  # noqa: S105 - a header name
CLIENT_SECRET_PATTERN = re.compile(r"[\x21-\x7e]{16,255}")
SESSION_CLIENT_KEY = "client"


def client_secret_check(raw: str | None) -> str | None:
    """The Orders-Client-Secret header's value, if sent; 400 when too weak."""
    if raw is None:
        return None
    if not CLIENT_SECRET_PATTERN.fullmatch(raw):
        raise ClientSecretInvalid(
            f"An {CLIENT_SECRET_HEADER} is 16 to 255 printable ASCII characters, "
            "no spaces: a random value the client keeps (a UUID)."
        )
    return raw


def session_client_mint(request: HttpRequest) -> None:
    """Give the session an id of its own (the page that renders the buy-now form
    does, so the form's POST and any retry of it carry the same one)."""
    if not request.session.get(SESSION_CLIENT_KEY):
        request.session[SESSION_CLIENT_KEY] = secrets.token_urlsafe(18)


def idempotency_client(request: HttpRequest | Any, *, secret: str | None) -> str:
    """Whose Idempotency-Keys these are: the client's secret, else its session's
    id, else its address; stored as a keyed digest, never as sent."""
    session = getattr(request, "session", None)
    session_id = session.get(SESSION_CLIENT_KEY) if session is not None else None
    if secret:
        kind, value = "secret", secret
    elif session_id:
        kind, value = "session", str(session_id)
    else:
        kind, value = "address", client_key(request)
    digest = salted_hmac(
        "orders.idempotency-client", f"{kind}:{value}", algorithm="sha256"
    ).hexdigest()
    return f"{kind}:{digest}"
