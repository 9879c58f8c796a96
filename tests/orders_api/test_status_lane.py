"""The ASGI status lane: an order's status for the holder of its token, read and
answered on the event loop, the same answer Django gives; anything else Django's."""

from __future__ import annotations

from typing import Any

import pytest

from tests.orders_api.conftest import (
    DjangoRequests,
    call,
    compared,
    order_placed,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_poll_with_the_token_is_djangos_answer_without_django(
    django_requests: DjangoRequests,
    settings: Any,
) -> None:
    # Given an order
    links = order_placed()

    # When its buyer polls its status with the lane, and again with it turned off
    django_requests.count = 0
    fast = call("GET", links["status_url"])
    assert django_requests.count == 0
    settings.ORDERS_LOOP_READS = False
    slow = call("GET", links["status_url"])
    assert django_requests.count == 1

    # Then both are the same answer: status, body (to the byte), headers
    assert fast.status_code == 200
    assert fast.json()["id"] == links["id"]
    assert fast.json()["status"] == "accepted"
    assert fast.json()["unit_price"] == "149.99"
    assert fast.content == slow.content
    assert compared(fast) == compared(slow)


def test_what_is_not_a_plain_poll_is_left_to_django(
    django_requests: DjangoRequests,
) -> None:
    # Given an order
    links = order_placed()
    status_url = links["status_url"]
    bare = status_url.split("?", 1)[0]
    unknown = "/api/orders/00000000-0000-4000-8000-000000000000/?token=x"

    # When it is asked for without a token, with another one, an unknown order,
    # and with a HEAD
    django_requests.count = 0
    no_token = call("GET", bare)
    wrong = call("GET", bare + "?token=not-this-orders")
    missing = call("GET", unknown)
    head = call("HEAD", status_url)

    # Then Django answered each, precisely
    assert django_requests.count == 4
    assert no_token.status_code == 401
    assert no_token.headers["WWW-Authenticate"].startswith("Bearer")
    assert wrong.status_code == 403
    assert missing.status_code == 404
    assert head.status_code == 200
