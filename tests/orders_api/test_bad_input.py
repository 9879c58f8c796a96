"""Bad input on every endpoint, form and command: a precise 4xx (or a command error),
and nothing written: no order, no event, no idempotency key, no stock taken."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from orders_api.admission import counter
from orders_api.models import Event, IdempotencyKey, Order, Sale
from tests.orders_api.conftest import new_key, order_body

pytestmark = pytest.mark.django_db(transaction=True)

PAGE = "/shop/rods/muskie-casting-rod/"


@pytest.fixture
def untouched(sale: Sale) -> Iterator[Sale]:
    """Given an open sale of 10, then after the request nothing was written."""
    yield sale
    assert Order.objects.count() == 0
    assert Event.objects.count() == 0
    assert IdempotencyKey.objects.count() == 0
    assert counter.counter_read(slug=sale.slug) == (10, True)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (order_body(quantity=0), "quantity"),
        (order_body(quantity=11), "quantity"),
        (order_body(quantity=-3), "quantity"),
        (order_body(quantity="1"), "quantity"),
        (order_body(quantity=1.5), "quantity"),
        (order_body(quantity=True), "quantity"),
        (order_body(quantity=None), "quantity"),
        (order_body(quantity=10**30), "quantity"),
        (order_body(email="not-an-email"), "email"),
        (order_body(email="a@" + "b" * 300 + ".com"), "email"),
        (order_body(email=7), "email"),
        (order_body(sku="ROD-TOURNEY"), "sku"),
        (order_body(sku=""), "sku"),
        ({"quantity": 1, "email": "a@example.com"}, "sku"),
        ({"sku": "ROD-MUSKIE", "email": "a@example.com"}, "quantity"),
    ],
)
def test_invalid_order_bodies_are_400(
    untouched: Sale, body: dict[str, Any], field: str
) -> None:
    response = APIClient().post(
        "/api/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY=new_key()
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert field in response.json()["fields"]


@pytest.mark.parametrize(
    ("payload", "content_type", "status", "code"),
    [
        ("{", "application/json", 400, "malformed_json"),
        ("[1, 2]", "application/json", 400, "invalid_request"),
        ('"text"', "application/json", 400, "invalid_request"),
        (
            "quantity=1",
            "application/x-www-form-urlencoded",
            415,
            "unsupported_media_type",
        ),
        ("<order/>", "application/xml", 415, "unsupported_media_type"),
    ],
)
def test_malformed_or_wrongly_typed_bodies(
    untouched: Sale, payload: str, content_type: str, status: int, code: str
) -> None:
    response = Client().post(
        "/api/orders/",
        payload,
        content_type=content_type,
        HTTP_IDEMPOTENCY_KEY=new_key(),
    )

    assert response.status_code == status
    assert response.json()["error"] == code


def test_an_oversized_body_is_refused(untouched: Sale) -> None:
    body = json.dumps({**order_body(), "email": "a" * 100_000 + "@example.com"})

    response = Client().post(
        "/api/orders/", body, content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=new_key(),
    )  # fmt: skip

    assert response.status_code == 413, response.content
    assert response.json()["error"] == "payload_too_large"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/orders/"),
        ("put", "/api/orders/"),
        ("delete", "/api/orders/00000000-0000-0000-0000-000000000000/"),
        ("post", "/api/sales/muskie-casting-rod/"),
    ],
)
def test_wrong_methods_are_405(untouched: Sale, method: str, path: str) -> None:
    response = getattr(APIClient(), method)(path)

    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


@pytest.mark.parametrize(
    "path",
    [
        "/api/orders/not-a-uuid/",
        "/api/orders/00000000-0000-0000-0000-000000000000/",
        "/api/orders/00000000-0000-0000-0000-000000000000/journey/",
        "/api/sales/no-such-sale/",
        "/api/nothing/",
    ],
)
def test_unknown_things_are_json_404s(untouched: Sale, path: str) -> None:
    response = APIClient().get(path)

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_an_order_without_its_token_is_401_and_with_a_wrong_one_403(
    sale: Sale,
) -> None:
    created = (
        APIClient()
        .post(
            "/api/orders/", order_body(), format="json", HTTP_IDEMPOTENCY_KEY=new_key()
        )
        .json()
    )
    detail = f"/api/orders/{created['id']}/"

    assert APIClient().get(detail).status_code == 401
    assert APIClient().get(detail + "?token=wrong").status_code == 403
    assert APIClient().get(detail + "journey/?token=wrong").status_code == 403
    assert APIClient().get(created["status_url"]).status_code == 200
    journey = APIClient().get(
        detail + "journey/?" + created["status_url"].split("?")[1]
    )
    assert [e["type"] for e in journey.json()] == ["orders.order-accepted"]


def _form(client: Client) -> dict[str, str]:
    page = client.get(PAGE).content.decode()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert match
    return {"csrfmiddlewaretoken": match.group(1)}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"quantity": "0", "email": "a@example.com"}, "greater than or equal to 1"),
        ({"quantity": "11", "email": "a@example.com"}, "less than or equal to 10"),
        ({"quantity": "abc", "email": "a@example.com"}, "Enter a whole number"),
        ({"quantity": "1.5", "email": "a@example.com"}, "Enter a whole number"),
        ({"email": "a@example.com"}, "This field is required"),
        ({"quantity": "1"}, "This field is required"),
        ({"quantity": "1", "email": "nope"}, "Enter a valid email address"),
        ({"quantity": "1", "email": "a@example.com", "idempotency_key": "k" * 300},
         "at most 255 characters"),
    ],
)  # fmt: skip
def test_the_buy_form_with_bad_input_is_400(
    untouched: Sale, data: dict[str, str], message: str
) -> None:
    browser = Client(enforce_csrf_checks=True)

    response = browser.post(PAGE + "buy/", {**_form(browser), **data})

    assert response.status_code == 400
    assert message in response.content.decode()


def test_the_buy_form_without_csrf_is_403(untouched: Sale) -> None:
    response = Client(enforce_csrf_checks=True).post(
        PAGE + "buy/", {"quantity": "1", "email": "a@example.com"}
    )

    assert response.status_code == 403


def test_a_form_key_reused_with_other_input_is_422(sale: Sale) -> None:
    browser = Client(enforce_csrf_checks=True)
    form = {**_form(browser), "idempotency_key": "form-key-1", "email": "a@example.com"}
    browser.post(PAGE + "buy/", {**form, "quantity": "1"})

    response = browser.post(PAGE + "buy/", {**form, "quantity": "2"})

    assert response.status_code == 422
    assert Order.objects.count() == 1


@pytest.mark.parametrize(
    "args",
    [
        ("sale", "open", "muskie-casting-rod", "--units", "0"),
        ("sale", "open", "muskie-casting-rod", "--units", "5"),
        ("sale", "open", "no-such-rod", "--units", "5"),
        ("sale", "status", "no-such-rod"),
        ("sale", "rebuild", "no-such-rod"),
        ("sale", "close", "no-such-rod"),
        ("events", "replay", "--since", "yesterday"),
        ("events", "replay", "--since", "2026-01-01T00:00:00"),
    ],
)
def test_commands_with_bad_input_fail_and_write_nothing(
    untouched: Sale, args: tuple[str, ...]
) -> None:
    with pytest.raises(CommandError):
        call_command(*args, stdout=io.StringIO(), stderr=io.StringIO())
    assert Sale.objects.count() == 1
