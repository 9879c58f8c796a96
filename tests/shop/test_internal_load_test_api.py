"""The shop's internal API for a load test: set a product's stock (the reset), and
list the orders of one product (the reconciliation).

Token-protected like the rest of /internal/; the stock change goes into the transfer
ledger, a replay answers its first result, and every refusal writes nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from shop import services
from shop.models import Order, Product, StockTransfer

pytestmark = pytest.mark.django_db

LEVELS = "/internal/stock/levels/"
ORDERS = "/internal/orders/"
# The token this run gave the service (make test makes one per run).
TOKEN = settings.INTERNAL_API_TOKEN
AUTH: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


def post_level(client: Client, body: Any, **headers: str) -> Any:
    return client.post(
        LEVELS, json.dumps(body), content_type="application/json", **{**AUTH, **headers}
    )


def stock(sku: str) -> int:
    return Product.objects.get(sku=sku).stock


def place(product: Product, quantity: int, email: str) -> Order:
    """An order placed the shop's own way (no warehouse: a test origin is not here)."""
    order = Order.objects.create(
        number=f"LF-T{Order.objects.count():07d}",
        email=email,
        status=Order.Status.FULFILLED,
        total=product.price * quantity,
    )
    order.lines.create(
        product=product,
        sku=product.sku,
        name=product.name,
        unit_price=product.price,
        quantity=quantity,
    )
    return order


# --- POST /internal/stock/levels/ -----------------------------------------------------


def test_setting_the_stock_records_the_difference_as_a_transfer(
    client: Client, muskie: Product
) -> None:
    # Given the Muskie rod with 100 in stock
    # When a load test resets it to 300, then sends the same reset again
    first = post_level(
        client, {"transfer_id": "reset-1", "sku": "ROD-MUSKIE", "stock": 300}
    )
    again = post_level(
        client, {"transfer_id": "reset-1", "sku": "ROD-MUSKIE", "stock": 300}
    )

    # Then the stock is 300 and the ledger holds one transfer of the 200 put back
    assert first.status_code == 201
    assert first.json()["units"] == -200
    assert first.json()["stock_after"] == 300
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert stock("ROD-MUSKIE") == 300
    assert list(StockTransfer.objects.values_list("units", flat=True)) == [-200]


def test_setting_the_stock_it_already_has_moves_and_writes_nothing(
    client: Client, muskie: Product
) -> None:
    response = post_level(
        client, {"transfer_id": "reset-2", "sku": "ROD-MUSKIE", "stock": 100}
    )

    assert response.status_code == 200
    assert response.json()["units"] == 0
    assert response.json()["stock_after"] == 100
    assert StockTransfer.objects.count() == 0


def test_lowering_the_stock_takes_units_out(client: Client, muskie: Product) -> None:
    response = post_level(
        client, {"transfer_id": "reset-3", "sku": "ROD-MUSKIE", "stock": 0}
    )

    assert response.status_code == 201
    assert response.json()["units"] == 100
    assert stock("ROD-MUSKIE") == 0


def test_the_same_reset_id_with_another_level_is_409(
    client: Client, muskie: Product
) -> None:
    post_level(client, {"transfer_id": "reset-4", "sku": "ROD-MUSKIE", "stock": 50})

    response = post_level(
        client, {"transfer_id": "reset-4", "sku": "ROD-MUSKIE", "stock": 60}
    )

    assert response.status_code == 409
    assert response.json()["error"] == "transfer_conflict"
    assert stock("ROD-MUSKIE") == 50


def test_a_reset_id_used_by_a_transfer_is_409(client: Client, muskie: Product) -> None:
    # Given a transfer of the orders service's sale
    services.stock_transfer(transfer_id="sale-open-1", sku="ROD-MUSKIE", units=10)

    # When a reset reuses its id
    response = post_level(
        client, {"transfer_id": "sale-open-1", "sku": "ROD-MUSKIE", "stock": 80}
    )

    # Then it is refused: the ledger row keeps its meaning
    assert response.status_code == 409
    assert stock("ROD-MUSKIE") == 90
    assert StockTransfer.objects.count() == 1


@pytest.mark.parametrize(
    "body",
    [
        {"transfer_id": "r", "sku": "ROD-MUSKIE"},
        {"transfer_id": "r", "sku": "ROD-MUSKIE", "stock": 1, "units": 1},
        {"transfer_id": "r", "sku": "ROD-MUSKIE", "stock": -1},
        {"transfer_id": "r", "sku": "ROD-MUSKIE", "stock": "5"},
        {"transfer_id": "r", "sku": "ROD-MUSKIE", "stock": 5.0},
        {"transfer_id": "r", "sku": "ROD-MUSKIE", "stock": True},
        {"transfer_id": "r", "sku": "ROD-MUSKIE", "stock": None},
        {"transfer_id": "r", "sku": "ROD-MUSKIE", "stock": 10**9},
        {"transfer_id": "r r", "sku": "ROD-MUSKIE", "stock": 5},
        {"transfer_id": "r", "sku": "S" * 33, "stock": 5},
        "ROD-MUSKIE",
    ],
    ids=[
        "missing",
        "unknown-key",
        "negative",
        "string",
        "float",
        "bool",
        "null",
        "huge",
        "id-space",
        "sku-long",
        "not-object",
    ],
)
def test_bad_reset_bodies_are_400_and_change_nothing(
    client: Client, muskie: Product, body: Any
) -> None:
    response = post_level(client, body)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert stock("ROD-MUSKIE") == 100
    assert StockTransfer.objects.count() == 0


def test_reset_of_an_unknown_sku_is_404(client: Client, muskie: Product) -> None:
    response = post_level(client, {"transfer_id": "r", "sku": "NOPE", "stock": 1})

    assert response.status_code == 404
    assert StockTransfer.objects.count() == 0


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"HTTP_AUTHORIZATION": "Bearer wrong"}, 403)],
    ids=["none", "wrong"],
)
def test_without_the_token_neither_endpoint_answers(
    client: Client, muskie: Product, headers: dict[str, Any], status: int
) -> None:
    reset = client.post(
        LEVELS,
        json.dumps({"transfer_id": "r", "sku": "ROD-MUSKIE", "stock": 1}),
        content_type="application/json",
        **headers,
    )
    listing = client.get(
        ORDERS, {"sku": "ROD-MUSKIE", "since": "2020-01-01T00:00:00Z"}, **headers
    )

    assert reset.status_code == status
    assert listing.status_code == status
    assert stock("ROD-MUSKIE") == 100


def test_reset_wrong_media_type_and_method(client: Client, muskie: Product) -> None:
    form = client.post(LEVELS, {"transfer_id": "r"}, **AUTH)
    wrong_method = client.get(LEVELS, **AUTH)

    assert form.status_code == 415
    assert wrong_method.status_code == 405
    assert wrong_method.headers["Allow"] == "POST"


# --- GET /internal/orders/ ------------------------------------------------------------


def test_orders_of_one_product_since_a_moment_a_page_at_a_time(
    client: Client, muskie: Product, tourney: Product
) -> None:
    # Given an old Muskie order, then three Muskie orders and a Tourney order
    old = place(muskie, 1, "old@example.com")
    Order.objects.filter(pk=old.pk).update(
        created_at=datetime.now(UTC) - timedelta(hours=2)
    )
    since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    placed = [place(muskie, n, f"m{n}@example.com") for n in (1, 2, 3)]
    place(tourney, 1, "t@example.com")

    # When the reconciliation pages through the Muskie orders, two at a time
    first = client.get(
        ORDERS, {"sku": "ROD-MUSKIE", "since": since, "limit": "2"}, **AUTH
    ).json()
    second = client.get(
        ORDERS,
        {
            "sku": "ROD-MUSKIE",
            "since": since,
            "limit": "2",
            "after": first["next_after"],
        },
        **AUTH,
    ).json()

    # Then it sees exactly the three new ones, with their lines, once each
    seen = first["orders"] + second["orders"]
    assert [o["number"] for o in seen] == [o.number for o in placed]
    assert seen[2]["email"] == "m3@example.com"
    assert seen[2]["lines"] == [{"sku": "ROD-MUSKIE", "quantity": 3}]
    assert seen[0]["status"] == "fulfilled"
    assert second["next_after"] is None


@pytest.mark.parametrize(
    "query",
    [
        {"since": "2020-01-01T00:00:00Z"},
        {"sku": "", "since": "2020-01-01T00:00:00Z"},
        {"sku": "S" * 33, "since": "2020-01-01T00:00:00Z"},
        {"sku": "ROD-MUSKIE"},
        {"sku": "ROD-MUSKIE", "since": "yesterday"},
        {"sku": "ROD-MUSKIE", "since": "2020-01-01T00:00:00"},
        {"sku": "ROD-MUSKIE", "since": "2020-13-45T00:00:00Z"},
        {"sku": "ROD-MUSKIE", "since": "2020-01-01T00:00:00Z", "limit": "0"},
        {"sku": "ROD-MUSKIE", "since": "2020-01-01T00:00:00Z", "limit": "5001"},
        {"sku": "ROD-MUSKIE", "since": "2020-01-01T00:00:00Z", "limit": "ten"},
        {"sku": "ROD-MUSKIE", "since": "2020-01-01T00:00:00Z", "after": "-1"},
        {"sku": "ROD-MUSKIE", "since": "2020-01-01T00:00:00Z", "after": "²"},
        {"sku": "ROD-MUSKIE", "since": "2020-01-01T00:00:00Z", "page": "2"},
    ],
    ids=[
        "no-sku",
        "sku-empty",
        "sku-long",
        "no-since",
        "since-words",
        "since-naive",
        "since-impossible",
        "limit-0",
        "limit-huge",
        "limit-words",
        "after-negative",
        "after-superscript",
        "unknown-param",
    ],
)
def test_bad_order_list_queries_are_400(
    client: Client, muskie: Product, query: dict[str, str]
) -> None:
    response = client.get(ORDERS, query, **AUTH)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_a_repeated_order_list_parameter_is_400(
    client: Client, muskie: Product
) -> None:
    response = client.get(
        ORDERS + "?sku=ROD-MUSKIE&sku=ROD-TOURNEY&since=2020-01-01T00:00:00Z", **AUTH
    )

    assert response.status_code == 400


def test_order_list_refuses_writes(client: Client, muskie: Product) -> None:
    response = client.post(ORDERS, {}, **AUTH)

    assert response.status_code == 405
