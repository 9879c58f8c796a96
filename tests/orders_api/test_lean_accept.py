"""The accept's cost in statements: one transaction for an order, none for a refusal."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from orders_api.models import Event, IdempotencyKey, Order, Sale
from tests.orders_api.conftest import new_key, order_body, sale_create

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/orders/"


def post(body: dict[str, Any], key: str) -> Any:
    return APIClient().post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_an_accept_is_one_transaction_of_one_statement(sale: Sale) -> None:
    # Given a process that has placed an order of this sale before (its snapshot)
    assert post(order_body(), new_key()).status_code == 202

    # When another buyer orders
    with CaptureQueriesContext(connection) as queries:
        response = post(order_body(), new_key())

    # Then the order, its outbox event and the key's answer: one statement, in one
    # transaction
    assert response.status_code == 202
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) == 3, statements
    assert (statements[0], statements[2]) == ("BEGIN", "COMMIT")
    for table in ("orders_api_order", "orders_api_event", "orders_api_idempotencykey"):
        assert f'INSERT INTO "{table}"' in statements[1]
    assert Order.objects.count() == Event.objects.count() == 2
    assert IdempotencyKey.objects.filter(status="completed").count() == 2


def test_a_sold_out_answer_and_its_replay_touch_no_database(
    transactional_db: None,
) -> None:
    # Given a sale that has sold its one unit
    sale_create(units=1)
    assert post(order_body(), new_key()).status_code == 202
    key = new_key()

    # When a buyer orders, and retries with the same key
    with CaptureQueriesContext(connection) as queries:
        first = post(order_body(), key)
        again = post(order_body(), key)

    # Then both are the sold-out answer, the second a replay, and no statement ran
    assert first.status_code == again.status_code == 409
    assert first.json()["error"] == "sold_out"
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert queries.captured_queries == []


def test_a_replay_of_an_accepted_order_is_answered_from_the_database(
    sale: Sale,
) -> None:
    # Given an accepted order
    key = new_key()
    first = post(order_body(), key)

    # When its key is sent again with the same body, then with another
    again = post(order_body(), key)
    other = post(order_body(quantity=2), key)

    # Then the first answer again, a 422, and still one order
    assert again.status_code == 202
    assert again.json() == first.json()
    assert other.status_code == 422
    assert Order.objects.count() == 1
