"""Idempotency-Keys are a client's own (as Stripe's are an account's), and no access
token is kept at rest: another client's same key is another request, never the
first client's answer or token."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from orders_api.models import Order, Sale
from tests.orders_api.conftest import new_key, order_body
from tests.orders_api.test_pages import BUY, csrf_form

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/orders/"


def post(api: APIClient, key: str, **headers: Any) -> Any:
    return api.post(
        URL, order_body(), format="json", HTTP_IDEMPOTENCY_KEY=key, **headers
    )


def with_secret(secret: str) -> dict[str, str]:
    return {"HTTP_ORDERS_CLIENT_SECRET": secret}


def test_another_client_secret_with_the_same_key_and_body_gets_its_own_order(
    api: APIClient, sale: Sale
) -> None:
    # Given a first client's order with this key
    key = new_key()
    mine, theirs = with_secret(str(uuid.uuid4())), with_secret(str(uuid.uuid4()))
    first = post(api, key, **mine)

    # When another client sends the same key and body
    other = post(APIClient(), key, **theirs)

    # Then it gets an order of its own: not the first answer, not its token
    assert first.status_code == other.status_code == 202
    assert "Idempotent-Replayed" not in other
    assert other.json()["id"] != first.json()["id"]
    assert token_of(other.json()) != token_of(first.json())
    assert Order.objects.count() == 2
    # and neither token opens the other's order
    stranger = APIClient()
    foreign = f"{URL}{first.json()['id']}/?token={token_of(other.json())}"
    assert stranger.get(foreign).status_code == 403
    # while each client's own replay is its own answer
    assert post(APIClient(), key, **mine).json() == first.json()
    assert post(APIClient(), key, **theirs).json() == other.json()


def test_without_a_secret_another_address_is_another_client(sale: Sale) -> None:
    key = new_key()

    here = post(APIClient(REMOTE_ADDR="10.0.0.1"), key)
    there = post(APIClient(REMOTE_ADDR="10.0.0.2"), key)

    assert here.status_code == there.status_code == 202
    assert here.json()["id"] != there.json()["id"]
    assert Order.objects.count() == 2


def test_another_browser_resending_a_forms_key_gets_its_own_order(
    sale: Sale,
) -> None:
    # Given a buyer who ordered with the form's key
    buyer, other = Client(), Client()
    form = {**csrf_form(buyer), "quantity": "1", "email": "angler@example.com"}
    first = buyer.post(BUY, form)
    # When another browser (another session) posts the same key and body
    theirs = {**form, "csrfmiddlewaretoken": csrf_form(other)["csrfmiddlewaretoken"]}
    second = other.post(BUY, theirs)

    # Then each has an order of its own, and the buyer's resubmission orders once
    assert first.status_code == second.status_code == 303
    assert first["Location"] != second["Location"]
    assert buyer.post(BUY, form)["Location"] == first["Location"]
    assert Order.objects.count() == 2


def test_a_short_client_secret_is_400(api: APIClient, sale: Sale) -> None:
    response = post(api, new_key(), **with_secret("short"))

    assert response.status_code == 400
    assert response.json()["error"] == "client_secret_invalid"
    assert Order.objects.count() == 0


def test_the_stored_response_holds_no_access_token_and_a_replay_gets_a_usable_one(
    api: APIClient, sale: Sale
) -> None:
    # Given an accepted order
    key = new_key()
    first = post(api, key)
    token = token_of(first.json())

    # Then the idempotency table, read as stored, does not hold its token
    with connection.cursor() as cursor:
        cursor.execute("SELECT response_body::text FROM orders_api_idempotencykey")
        stored = [row[0] for row in cursor.fetchall()]
    assert len(stored) == 1
    assert first.json()["id"] in stored[0]
    assert token not in stored[0]
    assert "token=" not in stored[0]
    # and the replay's token (derived again) opens the order, as the first did
    again = post(api, key)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    detail = APIClient().get(again.json()["status_url"])
    assert detail.status_code == 200
    assert detail.json()["id"] == first.json()["id"]
    assert Client().get(again.json()["page_url"]).status_code == 200


def token_of(body: dict[str, Any]) -> str:
    return str(body["status_url"].split("?token=")[1])
