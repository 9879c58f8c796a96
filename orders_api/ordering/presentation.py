"""How an order is shown to its buyer: its links and the body of the 202 (also the
stored response of its Idempotency-Key)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from orders_api.models import Order

LINKS = ("status_url", "ws_url", "page_url")


def order_links(*, order: Order, token: str | None) -> dict[str, str]:
    page = reverse(
        "orders:order-page",
        kwargs={
            "category": order.sale.category_slug,
            "slug": order.sale.slug,
            "order_id": order.pk,
        },
    )
    links = {
        "status_url": reverse("orders:order-detail", args=[order.pk]),
        "ws_url": f"/ws/orders/{order.pk}/",
        "page_url": page,
    }
    return links_with_token(links, token=token)


def links_with_token(body: dict[str, Any], *, token: str | None) -> dict[str, Any]:
    """`body` with the access token on each of its links (none added without one)."""
    if not token:
        return dict(body)
    return {
        name: f"{value}?token={token}" if name in LINKS else value
        for name, value in body.items()
    }


def order_accepted_body(*, order: Order, token: str | None) -> dict[str, Any]:
    """The 202's body; with token=None, as its Idempotency-Key stores it (no token
    at rest: a replay adds the token again with links_with_token)."""
    return {
        "id": str(order.pk),
        "number": order.number,
        "status": order.status,
        **order_links(order=order, token=token),
    }


def order_state(*, order: Order) -> dict[str, Any]:
    """What the status page and its websocket show."""
    return {
        "id": str(order.pk),
        "number": order.number,
        "status": order.status,
        "status_label": order.get_status_display(),
        "quantity": order.quantity,
        "name": order.name,
        "updated_at": order.updated_at.isoformat(),
    }
