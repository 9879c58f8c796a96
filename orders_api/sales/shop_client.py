"""The orders service's client for the shop's internal API (stock and products).

Over HTTP with a bearer token: the orders service never imports the shop's code.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
from django.conf import settings

from common.errors import NotFound
from common.http_client import LazyClient
from orders_api.exceptions import ShopRefused, ShopUnavailable

# One pool per process: `sale open` and `sale close` make a few calls each.
_shop = LazyClient(max_connections=4, max_keepalive_connections=2)


@dataclass(frozen=True)
class ProductSnapshot:
    sku: str
    name: str
    slug: str
    price: Decimal
    description: str
    image: str
    category_name: str
    category_slug: str


def _request(method: str, path: str, **kwargs: Any) -> httpx.Response:
    try:
        return _shop.get().request(
            method,
            settings.SHOP_URL.rstrip("/") + path,
            headers={"Authorization": f"Bearer {settings.INTERNAL_API_TOKEN}"},
            timeout=settings.SHOP_TIMEOUT_SECONDS,
            **kwargs,
        )
    except httpx.HTTPError as exc:
        raise ShopUnavailable(
            f"The shop at {settings.SHOP_URL} did not answer ({type(exc).__name__})."
        ) from None


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except ValueError:
        return response.text[:200]


def product_snapshot_get(*, sku: str) -> ProductSnapshot:
    response = _request("GET", f"/internal/products/{sku}/")
    if response.status_code == 404:
        raise NotFound(f"The shop has no product {sku!r}.")
    if response.status_code != 200:
        raise ShopUnavailable(
            f"The shop answered {response.status_code}: {_detail(response)}"
        )
    body = response.json()
    return ProductSnapshot(
        sku=body["sku"],
        name=body["name"],
        slug=body["slug"],
        price=Decimal(body["price"]),
        description=body["description"],
        image=body["image"],
        category_name=body["category"]["name"],
        category_slug=body["category"]["slug"],
    )


def stock_transfer(*, transfer_id: str, sku: str, units: int) -> int:
    """Take (units > 0) or give back (units < 0) stock; returns the shop's stock after.

    Idempotent on transfer_id, so a retry after a lost answer is safe.
    """
    response = _request(
        "POST",
        "/internal/stock/transfers/",
        json={"transfer_id": transfer_id, "sku": sku, "units": units},
    )
    if response.status_code in (200, 201):
        return int(response.json()["stock_after"])
    if response.status_code in (404, 409):
        raise ShopRefused(f"The shop refused the transfer: {_detail(response)}")
    raise ShopUnavailable(
        f"The shop answered {response.status_code}: {_detail(response)}"
    )


def product_sale_mark(*, sku: str, sale_url: str | None) -> None:
    """Tell the shop a sale of the product is open at `sale_url` (None: it closed).

    The legacy basket and checkout then send buyers here; idempotent both ways.
    """
    if sale_url is None:
        response = _request("DELETE", f"/internal/products/{sku}/sale/")
    else:
        response = _request(
            "PUT", f"/internal/products/{sku}/sale/", json={"sale_url": sale_url}
        )
    if response.status_code == 200:
        return
    if response.status_code == 404:
        raise ShopRefused(f"The shop refused the sale's mark: {_detail(response)}")
    raise ShopUnavailable(
        f"The shop answered {response.status_code}: {_detail(response)}"
    )
