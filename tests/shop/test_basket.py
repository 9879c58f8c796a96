"""The basket: add, update, remove, Decimal totals and the per-line maximum."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client

from shop.models import Order, Product

pytestmark = pytest.mark.django_db


def add(client: Client, product: Product, quantity: int | str):
    return client.post("/basket/add/", {"product": product.sku, "quantity": quantity})


def update(client: Client, product: Product, quantity: int | str):
    return client.post(
        "/basket/update/", {"product": product.sku, "quantity": quantity}
    )


def lines(client: Client) -> dict[str, int]:
    basket = client.get("/basket/").context["basket"]
    return {line.product.sku: line.quantity for line in basket.lines}


def test_totals_are_exact_decimals(
    client: Client, crankbait: Product, muskie: Product
) -> None:
    assert add(client, crankbait, 3).status_code == 303
    assert add(client, muskie, 1).status_code == 303

    response = client.get("/basket/")

    basket = response.context["basket"]
    assert isinstance(basket.total, Decimal)
    assert basket.total == Decimal("169.16")
    assert [line.line_total for line in basket.lines] == [
        Decimal("19.17"),
        Decimal("149.99"),
    ]
    assert "$169.16" in response.content.decode()
    assert basket.count == 4


def test_adding_redirects_to_the_basket_and_updates_the_header_count(
    client: Client, crankbait: Product
) -> None:
    response = add(client, crankbait, 2)

    assert response.status_code == 303
    assert response["Location"] == "/basket/"
    page = client.get("/shop/").content.decode()
    assert 'aria-label="items in basket">2</span>' in page


def test_adding_the_same_product_again_adds_up(
    client: Client, crankbait: Product
) -> None:
    add(client, crankbait, 2)
    add(client, crankbait, 3)

    assert lines(client) == {"HB-SQBILL": 5}


def test_update_sets_the_quantity_and_zero_removes(
    client: Client, crankbait: Product, muskie: Product
) -> None:
    add(client, crankbait, 2)
    add(client, muskie, 1)

    assert update(client, crankbait, 7).status_code == 303
    assert lines(client) == {"HB-SQBILL": 7, "ROD-MUSKIE": 1}

    assert update(client, muskie, 0).status_code == 303
    assert lines(client) == {"HB-SQBILL": 7}


def test_a_line_never_exceeds_the_maximum(client: Client, crankbait: Product) -> None:
    maximum = settings.MAX_QUANTITY_PER_LINE
    add(client, crankbait, maximum)

    response = add(client, crankbait, 1)

    assert response.status_code == 400
    assert f"between 1 and {maximum}" in response.content.decode()
    assert lines(client) == {"HB-SQBILL": maximum}


def test_update_above_the_maximum_is_refused(
    client: Client, crankbait: Product
) -> None:
    add(client, crankbait, 2)

    response = update(client, crankbait, settings.MAX_QUANTITY_PER_LINE + 1)

    assert response.status_code == 400
    assert lines(client) == {"HB-SQBILL": 2}


def test_updating_a_product_not_in_the_basket_is_404(
    client: Client, crankbait: Product, muskie: Product
) -> None:
    add(client, crankbait, 1)

    assert update(client, muskie, 2).status_code == 404
    assert lines(client) == {"HB-SQBILL": 1}


def test_the_basket_never_touches_stock_or_orders(
    client: Client, crankbait: Product
) -> None:
    add(client, crankbait, 4)

    crankbait.refresh_from_db()
    assert crankbait.stock == 2500
    assert Order.objects.count() == 0
