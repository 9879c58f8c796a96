"""The orders service marks a product it runs a sale of (PUT/DELETE
/internal/products/<sku>/sale/); while marked, the legacy basket and checkout refuse it
and point to the sale. The whole round with a real `sale open`/`sale close`:
tests/orders_api/test_stock_heals.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from shop.models import Product
from tests.support.stack import warehouse_process

pytestmark = pytest.mark.django_db
SALE = "/internal/products/ROD-MUSKIE/sale/"


def auth() -> dict[str, Any]:
    return {"HTTP_AUTHORIZATION": f"Bearer {settings.INTERNAL_API_TOKEN}"}


def mark(client: Client, body: Any) -> Any:
    return client.put(SALE, json.dumps(body), content_type="application/json", **auth())


def add(client: Client, product: Product) -> Any:
    return client.post("/basket/add/", {"product": product.sku, "quantity": 1})


@pytest.fixture
def at_warehouse(settings: Any) -> Any:
    """A real warehouse for the buy-now that is not refused."""
    with warehouse_process("test_sale_mark_wh", capacity=4, handling_ms=5) as service:
        settings.WAREHOUSE_URL = service.url
        yield service


def test_a_marked_product_is_refused_with_the_sale_url_until_the_mark_is_cleared(
    client: Client, muskie: Product, tourney: Product, at_warehouse: Any
) -> None:
    # Given the orders service's mark on the Muskie rod
    answer = mark(client, {"sale_url": "/sale/muskie-casting-rod/"})
    assert answer.status_code == 200
    assert answer.json() == {
        "sku": "ROD-MUSKIE",
        "sale_url": "/sale/muskie-casting-rod/",
    }

    # Then the basket refuses it, naming the sale; other products sell
    refused = add(client, muskie)
    assert refused.status_code == 409
    assert "buy it at /sale/muskie-casting-rod/" in refused.content.decode()
    assert add(client, tourney).status_code == 303
    # And the product's own buy-now (the edge's route: the sale in strangler mode, the
    # monolith the operator chose in legacy mode) still sells the shop's own stock
    buy = client.post(
        muskie.get_absolute_url() + "buy/",
        {"quantity": 1, "email": "legacy@example.com"},
    )
    assert buy.status_code == 303

    # And once the mark is cleared, the basket takes it again
    assert client.delete(SALE, **auth()).status_code == 200
    assert add(client, muskie).status_code == 303


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"sale_url": "javascript:alert(1)"}, 400),
        ({"sale_url": "/sale/<b>/"}, 400),
        ({"sale_url": 7}, 400),
        ({"url": "/sale/x/"}, 400),
    ],
)
def test_a_mark_must_be_a_path_or_an_http_url(
    client: Client, muskie: Product, body: Any, status: int
) -> None:
    assert mark(client, body).status_code == status
    assert Product.objects.get(pk=muskie.pk).sale_url == ""


def test_marking_needs_the_token_and_a_known_product(
    client: Client, muskie: Product
) -> None:
    assert client.delete(SALE).status_code == 401
    unknown = client.delete("/internal/products/NOPE/sale/", **auth())
    assert unknown.status_code == 404
