"""The ASGI status lane: an order's status for the holder of its token, read and
answered on the event loop, the same answer Django gives; anything else Django's."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from orders_api.asgi import traced_django_asgi_application
from orders_api.web.fast_lane import OrderFastLane
from orders_api.web.status_lane import OrderStatusLane
from tests.orders_api.conftest import DjangoRequests, compared, new_key, sale_create

pytestmark = pytest.mark.django_db(transaction=True)


def call(method: str, path: str, **kw: Any) -> httpx.Response:
    """One request to the orders service's HTTP app as asgi.py builds it, served
    in-process on an event loop of its own."""
    return asyncio.run(_call(method, path, **kw))


async def _call(method: str, path: str, **kw: Any) -> httpx.Response:
    app = OrderFastLane(
        OrderStatusLane(traced_django_asgi_application("orders-api", threads=2))
    )
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport) as client:
            return await client.request(method, "http://127.0.0.1" + path, **kw)
    finally:
        app.close()


def placed() -> dict[str, Any]:
    """An order placed through the API: its 202's body (links with its token)."""
    sale_create(units=3)
    answer = call(
        "POST",
        "/api/orders/",
        json={"sku": "ROD-MUSKIE", "quantity": 1, "email": "poll@example.com"},
        headers={"Idempotency-Key": new_key()},
    )
    assert answer.status_code == 202
    return answer.json()


def test_a_poll_with_the_token_is_djangos_answer_without_django(
    django_requests: DjangoRequests,
    settings: Any,
) -> None:
    # Given an order
    links = placed()

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
    links = placed()
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
