"""The orders service as a dead letter's replay needs it: take the order's units back.

A failed order gave its units back to its sale, which may have sold them again;
shipping it then would oversell. So before a replay the orders service takes them
back (POST /internal/orders/<number>/reclaim, the internal token): 200, the order
may ship; 409 `units_gone` or 404, it must not; anything else, nobody knows, and the
replay stops.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx
from django.conf import settings

from common.auth import bearer_headers
from common.http_client import LazyClient

# An operator's command: a connection or two is plenty.
_client = LazyClient(max_connections=2, max_keepalive_connections=1)


class OrdersUnavailable(Exception):
    """The orders service did not answer, or not with a yes or a no."""


def order_reclaim(*, order_ref: str) -> str | None:
    """None when the order may ship again; else why it must not (for the operator).

    Raises OrdersUnavailable (a transport error, a 5xx, a refused token).
    """
    base = settings.ORDERS_URL.rstrip("/")
    url = f"{base}/internal/orders/{quote(order_ref, safe='')}/reclaim"
    try:
        response = _client.get().post(
            url,
            headers=bearer_headers(settings.INTERNAL_API_TOKEN),
            timeout=settings.FULFILLMENT_ORDERS_TIMEOUT,
        )
    except httpx.HTTPError as exc:
        raise OrdersUnavailable(
            f"the orders service at {base} did not answer ({type(exc).__name__})"
        ) from None
    if response.status_code == 200:
        return None
    if response.status_code == 404:
        return "unknown to the orders service"
    if response.status_code == 409:
        try:
            body = response.json()
        except ValueError:
            body = {"detail": response.text[:200]}
        if body.get("error") == "units_gone":
            return f"units gone: {body.get('reason') or body.get('detail')}"
        return f"refused: {body.get('detail')}"
    raise OrdersUnavailable(
        f"the orders service at {base} answered {response.status_code}: "
        f"{response.text[:200]}"
    )
