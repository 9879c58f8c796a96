"""GET /internal/sales/<slug>/orders/: the current sale's orders, for the sale run's
reconciliation. Internal token only, paged, strict about its query, not in the schema.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from orders_api.models import Sale
from orders_api.ordering import services

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/internal/sales/muskie-casting-rod/orders/"
# The token this run gave the service (make test makes one per run).
TOKEN = settings.INTERNAL_API_TOKEN
AUTH: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


def place(email: str, quantity: int = 1) -> str:
    placed = services.order_place(
        slug="muskie-casting-rod",
        quantity=quantity,
        email=email,
        trace_id="0" * 31 + "1",
    )
    return placed.order.number


def test_the_current_sales_orders_a_page_at_a_time(sale: Sale) -> None:
    # Given three orders in the open sale of 10
    numbers = [place(f"b{n}@example.com", quantity=n) for n in (1, 2, 3)]

    # When the reconciliation reads them two at a time
    api = APIClient()
    first = api.get(URL, {"limit": 2}, **AUTH).json()
    second = api.get(URL, {"limit": 2, "offset": first["next_offset"]}, **AUTH).json()

    # Then it sees each once, oldest first, with the sale they belong to
    seen = first["orders"] + second["orders"]
    assert [o["number"] for o in seen] == numbers
    assert [o["quantity"] for o in seen] == [1, 2, 3]
    assert seen[1]["email"] == "b2@example.com"
    assert {o["status"] for o in seen} == {"accepted"}
    assert first["sale"]["id"] == sale.pk
    assert first["sale"]["units_allocated"] == 10
    assert first["sale"]["status"] == "open"
    assert second["next_offset"] is None


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "not_authenticated"),
        ({"HTTP_AUTHORIZATION": f"Token {TOKEN}"}, 401, "not_authenticated"),
        ({"HTTP_AUTHORIZATION": "Bearer wrong"}, 403, "forbidden"),
    ],
    ids=["none", "not-bearer", "wrong"],
)
def test_the_listing_wants_the_internal_token(
    sale: Sale, headers: dict[str, Any], status: int, code: str
) -> None:
    place("secret@example.com")

    response = APIClient().get(URL, **headers)

    assert response.status_code == status
    assert response.json()["error"] == code
    assert "secret@example.com" not in response.content.decode()


@pytest.mark.parametrize(
    "query",
    [
        {"limit": 0},
        {"limit": 5001},
        {"limit": "ten"},
        {"offset": -1},
        {"offset": "1.5"},
        {"page": 2},
    ],
    ids=["limit-0", "limit-huge", "limit-word", "offset-negative", "offset-float",
         "unknown"],
)  # fmt: skip
def test_bad_listing_queries_are_400(sale: Sale, query: dict[str, Any]) -> None:
    response = APIClient().get(URL, query, **AUTH)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_no_sale_of_that_product_is_404(transactional_db: None) -> None:
    response = APIClient().get("/internal/sales/no-such-rod/orders/", **AUTH)

    assert response.status_code == 404


def test_the_listing_is_not_in_the_public_schema(transactional_db: None) -> None:
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()

    assert not [path for path in schema["paths"] if path.startswith("/internal/")]
