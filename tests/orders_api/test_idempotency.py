"""The Idempotency-Key matrix (Stripe / IETF draft) on POST /api/orders/."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from orders_api.models import IdempotencyKey, Order, Sale
from orders_api.ordering.idempotency import idempotency_begin, idempotency_sweep
from orders_api.ordering.presentation import LINKS
from tests.orders_api.conftest import address_client, new_key, order_body

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/orders/"


def post(api: APIClient, body: dict, key: str | None) -> Any:
    headers: dict[str, Any] = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return api.post(URL, body, format="json", **headers)


def test_first_request_is_accepted_and_stores_its_response(
    api: APIClient, sale: Sale
) -> None:
    key = new_key()

    response = post(api, order_body(), key)

    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"id", "number", "status", "status_url", "ws_url", "page_url"}
    assert body["status"] == "accepted"
    assert response["Location"] == body["status_url"]
    record = IdempotencyKey.objects.get(key=key)
    assert record.status == "completed"
    assert record.response_status == 202
    # stored without the access token (a replay derives it again)
    assert record.response_body == {
        **body,
        **{link: body[link].split("?token=")[0] for link in LINKS},
    }


def test_a_replay_with_the_same_body_returns_the_first_response(
    api: APIClient, sale: Sale
) -> None:
    key = new_key()
    first = post(api, order_body(quantity=2), key)

    again = post(api, order_body(quantity=2), key)

    assert again.status_code == 202
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1


def test_the_same_key_with_another_body_is_422(api: APIClient, sale: Sale) -> None:
    key = new_key()
    post(api, order_body(quantity=1), key)

    response = post(api, order_body(quantity=3), key)

    assert response.status_code == 422
    assert response.json()["error"] == "idempotency_key_reused"
    assert Order.objects.count() == 1


def test_a_missing_key_is_400_and_writes_nothing(api: APIClient, sale: Sale) -> None:
    response = post(api, order_body(), None)

    assert response.status_code == 400
    assert response.json()["error"] == "idempotency_key_missing"
    assert Order.objects.count() == 0
    assert IdempotencyKey.objects.count() == 0


@pytest.mark.parametrize("key", ["", "with space", "x" * 256, "tab\there", "é"])
def test_a_malformed_key_is_400(api: APIClient, sale: Sale, key: str) -> None:
    response = post(api, order_body(), key)

    assert response.status_code == 400
    assert Order.objects.count() == 0


def test_a_duplicate_while_the_first_is_in_progress_is_409(
    api: APIClient, sale: Sale
) -> None:
    # Given a first request with this key that has not finished
    key = new_key()
    idempotency_begin(
        scope="POST /api/orders/",
        client=address_client(),
        key=key,
        fingerprint=_fingerprint(order_body()),
    )

    response = post(api, order_body(), key)

    assert response.status_code == 409
    assert response.json()["error"] == "idempotency_in_progress"
    assert response["Retry-After"] == "1"
    assert Order.objects.count() == 0


def test_concurrent_duplicates_make_one_order(sale: Sale) -> None:
    # Given 12 clients sending the same key and body at the same moment
    key = new_key()
    statuses: list[int] = []
    bodies: list[dict] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(12)

    def send() -> None:
        try:
            barrier.wait(timeout=10)
            response = post(APIClient(), order_body(), key)
            statuses.append(response.status_code)
            if response.status_code == 202:
                bodies.append(response.json())
        except BaseException as error:  # surfaced below, in the test's thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    # Then every client was answered, none failed on its way
    assert not errors, errors
    assert len(statuses) == 12, statuses
    # and one order; every other answer is the same 202 (replayed) or a 409
    assert set(statuses) <= {202, 409}, statuses
    assert 202 in statuses
    assert Order.objects.count() == 1
    assert all(body["id"] == bodies[0]["id"] for body in bodies)


def test_a_sold_out_answer_is_stored_and_replayed(api: APIClient, sale: Sale) -> None:
    post(api, order_body(quantity=10), new_key())
    key = new_key()

    first = post(api, order_body(), key)
    again = post(api, order_body(), key)

    assert first.status_code == again.status_code == 409
    assert (
        again.json()
        == first.json()
        == {
            "error": "sold_out",
            "detail": "Sorry, the Muskie Casting Rod is sold out.",
        }
    )
    assert again["Idempotent-Replayed"] == "true"


def test_an_expired_key_is_a_new_key(api: APIClient, sale: Sale) -> None:
    key = new_key()
    post(api, order_body(), key)
    IdempotencyKey.objects.filter(key=key).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    response = post(api, order_body(quantity=2), key)

    assert response.status_code == 202
    assert Order.objects.count() == 2


def test_the_sweep_deletes_only_expired_keys(api: APIClient, sale: Sale) -> None:
    old, fresh = new_key(), new_key()
    post(api, order_body(), old)
    post(api, order_body(), fresh)
    IdempotencyKey.objects.filter(key=old).update(
        expires_at=timezone.now() - timedelta(hours=1)
    )

    assert idempotency_sweep() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == [fresh]


def test_keys_live_24_hours(api: APIClient, sale: Sale) -> None:
    key = new_key()
    post(api, order_body(), key)

    record = IdempotencyKey.objects.get(key=key)
    assert record.expires_at - record.created_at == pytest.approx(
        timedelta(hours=24), abs=timedelta(seconds=5)
    )


def _fingerprint(body: dict) -> str:
    from orders_api.ordering.idempotency import fingerprint_of

    return fingerprint_of(method="POST", path="/api/orders/", payload=body)
