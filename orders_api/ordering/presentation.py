"""How an order is shown to its buyer: its links and the body of the 202 (also the
stored response of its Idempotency-Key)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from orders_api.models import Order


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
