"""The legacy shop's synchronous HTTP client for the warehouse service (port 8003)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import httpx
from django.conf import settings

from common.auth import bearer_headers
from common.http_client import LazyClient
from shop.exceptions import WarehouseUnavailable

# One pooled client per process, shared by gunicorn's threads.
_client = LazyClient(max_connections=64, max_keepalive_connections=16)


@dataclass(frozen=True)
class FulfillmentLine:
    sku: str
    quantity: int


@dataclass(frozen=True)
class FulfillmentReceipt:
    order_ref: str
    fulfillment_id: int
    replayed: bool


def fulfillment_request(
    *, order_ref: str, lines: Sequence[FulfillmentLine]
) -> FulfillmentReceipt:
    """Ask the warehouse to pick and pack an order; block until it has answered."""
    payload = {
        "order_ref": order_ref,
        "lines": [{"sku": line.sku, "quantity": line.quantity} for line in lines],
    }
    try:
        response = _client.get().post(
            settings.WAREHOUSE_URL.rstrip("/") + "/fulfilments/",
            json=payload,
            headers=bearer_headers(settings.INTERNAL_API_TOKEN),
            timeout=settings.WAREHOUSE_TIMEOUT_SECONDS,
        )
    except httpx.TimeoutException:
        raise WarehouseUnavailable(
            "The warehouse did not answer in time. "
            "Nothing was ordered; please try again."
        ) from None
    except httpx.TransportError:
        raise WarehouseUnavailable(
            "The warehouse cannot be reached. Nothing was ordered; please try again."
        ) from None
    if response.status_code == 503:
        retry_after = response.headers.get("Retry-After", "1")
        raise WarehouseUnavailable(
            "The warehouse is at capacity right now. Nothing was ordered; please try "
            "again in a moment.",
            retry_after=int(retry_after) if retry_after.isdigit() else 1,
        )
    if response.status_code not in (200, 201):
        raise WarehouseUnavailable(
            f"The warehouse rejected the order (HTTP {response.status_code}). "
            "Nothing was ordered."
        )
    body = response.json()
    return FulfillmentReceipt(
        order_ref=body["order_ref"],
        fulfillment_id=int(body["id"]),
        replayed=response.status_code == 200,
    )
