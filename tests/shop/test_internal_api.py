"""The shop's internal API: stock transfers to the orders service, product snapshots.

Token-protected (401 without a bearer token, 403 with a wrong one), idempotent on
transfer_id, never below zero stock; every refusal writes nothing.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from shop.models import Product, StockTransfer

pytestmark = pytest.mark.django_db

TRANSFERS = "/internal/stock/transfers/"
# The token this run gave the service (make test makes one per run).
TOKEN = settings.INTERNAL_API_TOKEN
AUTH: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


def post_transfer(client: Client, body: Any, **headers: str) -> Any:
    return client.post(
        TRANSFERS,
        json.dumps(body),
        content_type="application/json",
        **{**AUTH, **headers},
    )


def stock(sku: str) -> int:
    return Product.objects.get(sku=sku).stock


def test_a_transfer_takes_stock_and_a_replay_answers_the_first_result(
    client: Client, muskie: Product
) -> None:
    # Given the Muskie rod with 100 in stock
    body = {"transfer_id": "sale-1-open", "sku": "ROD-MUSKIE", "units": 60}

    # When the orders service takes 60, then sends the same transfer again
    first = post_transfer(client, body)
    again = post_transfer(client, body)

    # Then the stock went down once, and the replay says so
    assert first.status_code == 201
    assert first.json()["stock_after"] == 40
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert stock("ROD-MUSKIE") == 40
    assert StockTransfer.objects.count() == 1


def test_negative_units_give_stock_back(client: Client, muskie: Product) -> None:
    # Given 30 units taken
    post_transfer(client, {"transfer_id": "t-take", "sku": "ROD-MUSKIE", "units": 30})

    # When 12 come back
    back = post_transfer(
        client, {"transfer_id": "t-back", "sku": "ROD-MUSKIE", "units": -12}
    )

    # Then the shop has them again
    assert back.status_code == 201
    assert stock("ROD-MUSKIE") == 82


def test_taking_more_than_the_stock_is_409_and_changes_nothing(
    client: Client, muskie: Product
) -> None:
    response = post_transfer(
        client, {"transfer_id": "t-big", "sku": "ROD-MUSKIE", "units": 101}
    )

    assert response.status_code == 409
    assert response.json()["error"] == "insufficient_stock"
    assert stock("ROD-MUSKIE") == 100
    assert StockTransfer.objects.count() == 0


def test_the_same_transfer_id_with_other_units_is_409(
    client: Client, muskie: Product
) -> None:
    post_transfer(client, {"transfer_id": "t-1", "sku": "ROD-MUSKIE", "units": 5})

    response = post_transfer(
        client, {"transfer_id": "t-1", "sku": "ROD-MUSKIE", "units": 6}
    )

    assert response.status_code == 409
    assert response.json()["error"] == "transfer_conflict"
    assert stock("ROD-MUSKIE") == 95


@pytest.mark.django_db(transaction=True)
def test_concurrent_transfers_never_take_more_than_the_stock(muskie: Product) -> None:
    # Given 100 in stock and 8 callers each taking 30 at once (240 wanted)
    statuses: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def take(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            response = post_transfer(
                Client(),
                {"transfer_id": f"c-{index}", "sku": "ROD-MUSKIE", "units": 30},
            )
            statuses.append(response.status_code)
        except BaseException as error:  # surfaced below, in the test's thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=take, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors

    # Then exactly three succeed and the stock is 10, never negative
    assert sorted(statuses) == [201] * 3 + [409] * 5
    assert stock("ROD-MUSKIE") == 10


def test_product_snapshot(client: Client, muskie: Product) -> None:
    response = client.get("/internal/products/ROD-MUSKIE/", **AUTH)

    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Muskie Casting Rod"
    assert body["price"] == "149.99"
    assert body["image"] == "shop/img/muskie-casting-rod.svg"
    assert body["category"] == {"name": "Rods", "slug": "rods"}
    assert body["description"]


def test_unknown_product_snapshot_is_404(client: Client, muskie: Product) -> None:
    assert client.get("/internal/products/NOPE/", **AUTH).status_code == 404


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "not_authenticated"),
        ({"HTTP_AUTHORIZATION": "Basic dXNlcjpwdw=="}, 401, "not_authenticated"),
        ({"HTTP_AUTHORIZATION": "Bearer "}, 401, "not_authenticated"),
        ({"HTTP_AUTHORIZATION": "Bearer wrong-token"}, 403, "forbidden"),
        ({"HTTP_AUTHORIZATION": f"Bearer {TOKEN}x"}, 403, "forbidden"),
    ],
    ids=["none", "basic", "empty-bearer", "wrong", "longer"],
)
def test_without_the_right_token_nothing_happens(
    client: Client, muskie: Product, headers: dict[str, Any], status: int, code: str
) -> None:
    body = {"transfer_id": "t-x", "sku": "ROD-MUSKIE", "units": 1}

    transfer = client.post(
        TRANSFERS, json.dumps(body), content_type="application/json", **headers
    )
    snapshot = client.get("/internal/products/ROD-MUSKIE/", **headers)

    assert transfer.status_code == status
    assert transfer.json()["error"] == code
    assert snapshot.status_code == status
    if status == 401:
        assert transfer.headers["WWW-Authenticate"].startswith("Bearer")
    assert stock("ROD-MUSKIE") == 100
    assert StockTransfer.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [
        {"transfer_id": "t", "sku": "ROD-MUSKIE"},
        {"transfer_id": "t", "sku": "ROD-MUSKIE", "units": 1, "extra": 1},
        {"transfer_id": "t", "sku": "ROD-MUSKIE", "units": 0},
        {"transfer_id": "t", "sku": "ROD-MUSKIE", "units": "1"},
        {"transfer_id": "t", "sku": "ROD-MUSKIE", "units": 1.5},
        {"transfer_id": "t", "sku": "ROD-MUSKIE", "units": True},
        {"transfer_id": "t", "sku": "ROD-MUSKIE", "units": 10**9},
        {"transfer_id": "has space", "sku": "ROD-MUSKIE", "units": 1},
        {"transfer_id": "t" * 65, "sku": "ROD-MUSKIE", "units": 1},
        {"transfer_id": 7, "sku": "ROD-MUSKIE", "units": 1},
        {"transfer_id": "t", "sku": "", "units": 1},
        [1, 2],
    ],
    ids=[
        "missing",
        "unknown-key",
        "zero",
        "string",
        "fraction",
        "bool",
        "huge",
        "id-space",
        "id-long",
        "id-int",
        "sku-empty",
        "not-object",
    ],
)
def test_bad_transfer_bodies_are_400(
    client: Client, muskie: Product, body: Any
) -> None:
    response = post_transfer(client, body)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert stock("ROD-MUSKIE") == 100
    assert StockTransfer.objects.count() == 0


def test_unknown_sku_transfer_is_404(client: Client, muskie: Product) -> None:
    response = post_transfer(client, {"transfer_id": "t", "sku": "NOPE", "units": 1})

    assert response.status_code == 404
    assert StockTransfer.objects.count() == 0


def test_malformed_json_wrong_media_type_and_method(
    client: Client, muskie: Product
) -> None:
    malformed = client.post(TRANSFERS, "{", content_type="application/json", **AUTH)
    form = client.post(TRANSFERS, {"transfer_id": "t"}, **AUTH)
    wrong_method = client.get(TRANSFERS, **AUTH)

    assert malformed.status_code == 400
    assert form.status_code == 415
    assert wrong_method.status_code == 405
    assert StockTransfer.objects.count() == 0
