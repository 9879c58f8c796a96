"""The ASGI fast lane: refusals of POST /api/orders/ answered from Redis alone,
before Django, and the plain accept placed on the event loop, each the same answer
Django gives; everything else still Django's."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from django.conf import settings
from psycopg import pq

from orders_api.admission import accept as redis_accept
from orders_api.admission import counter
from orders_api.admission.redis_client import redis_get
from orders_api.asgi import traced_django_asgi_application
from orders_api.models import Event, Order, Sale
from orders_api.sales.services import sale_counter_rebuild
from orders_api.web.fast_accept import (
    LaneDatabase,
    LongWay,
    lane_database,
    order_accept_on_loop,
)
from orders_api.web.fast_lane import OrderFastLane
from tests.orders_api.conftest import (
    DjangoRequests,
    compared,
    new_key,
    order_body,
    sale_create,
)

pytestmark = pytest.mark.django_db(transaction=True)

URL = "http://127.0.0.1/api/orders/"


class Orders:
    """The orders service's HTTP app as asgi.py builds it (the fast lane in front of
    Django's handler on its thread pool), served in-process: each call a fresh app
    on an event loop of its own (the ORM stays out of the test's loop)."""

    def post(self, key: str | None, body: Any = None, **kw: Any) -> httpx.Response:
        return asyncio.run(self._post(key, body, **kw))

    async def _post(self, key: str | None, body: Any, **kw: Any) -> httpx.Response:
        app = OrderFastLane(traced_django_asgi_application("orders-api", threads=2))
        transport = httpx.ASGITransport(app=app)
        headers = {} if key is None else {"Idempotency-Key": key}
        try:
            async with httpx.AsyncClient(transport=transport) as client:
                if "content" in kw:
                    headers["Content-Type"] = "application/json"
                    return await client.post(
                        URL, content=kw["content"], headers=headers
                    )
                return await client.post(
                    URL, json=order_body() if body is None else body, headers=headers
                )
        finally:
            app.close()


@pytest.fixture
def orders() -> Orders:
    return Orders()


def fast_then_django(
    orders: Orders, django_requests: DjangoRequests, settings: Any
) -> tuple[httpx.Response, httpx.Response]:
    """One order with the fast lane, then one with it turned off: only the second
    reaches Django."""
    django_requests.count = 0
    fast = orders.post(new_key())
    settings.ORDERS_FAST_LANE = False
    slow = orders.post(new_key())
    assert django_requests.count == 1
    return fast, slow


def test_a_sold_out_answer_is_djangos_answer_without_django(
    orders: Orders, django_requests: DjangoRequests, settings: Any
) -> None:
    # Given a sale whose one unit is sold
    sale_create(units=1)
    assert orders.post(new_key()).status_code == 202

    # When a buyer orders with the fast lane, and another with it turned off
    # (the first never reaching Django, the second does)
    fast, slow = fast_then_django(orders, django_requests, settings)

    # Then both are the same sold-out answer: status, body, headers
    assert fast.json() == {
        "error": "sold_out",
        "detail": "Sorry, the Muskie Casting Rod is sold out.",
    }
    assert compared(fast) == compared(slow)


def test_a_rate_limited_answer_is_djangos_answer_without_django(
    orders: Orders, django_requests: DjangoRequests, settings: Any
) -> None:
    # Given a sale and a client allowed 2 attempts a window, both used
    sale_create(units=10)
    settings.ORDERS_RATE_LIMIT = 2
    for _ in range(2):
        assert orders.post(new_key()).status_code == 202

    # When it tries again, with the fast lane (not reaching Django) and without
    fast, slow = fast_then_django(orders, django_requests, settings)

    # Then both are the same 429 with Retry-After
    assert fast.status_code == 429
    assert fast.json()["error"] == "rate_limited"
    assert int(fast.headers["Retry-After"]) >= 1
    assert compared(fast) == compared(slow)


def test_a_stored_refusal_is_replayed_and_another_body_is_422_without_django(
    orders: Orders, django_requests: DjangoRequests, settings: Any
) -> None:
    # Given a buyer refused as sold out under its key
    sale_create(units=0)
    key = new_key()
    first = orders.post(key)
    assert first.status_code == 409

    # When it retries with the same key and body, then with another body
    django_requests.count = 0
    replay = orders.post(key)
    reused = orders.post(key, order_body(quantity=2))
    # and the same two once more through Django
    settings.ORDERS_FAST_LANE = False
    replay_slow = orders.post(key)
    reused_slow = orders.post(key, order_body(quantity=2))

    # Then the replay is the stored answer, marked as a replay; another body is 422
    assert replay.json() == first.json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert reused.status_code == 422
    assert reused.json()["error"] == "idempotency_key_reused"
    # the same as Django's, and only those through Django reached it
    assert compared(replay) == compared(replay_slow)
    assert compared(reused) == compared(reused_slow)
    assert django_requests.count == 2


def test_an_admitted_order_is_placed_on_the_loop_as_django_places_it(
    orders: Orders, django_requests: DjangoRequests, settings: Any
) -> None:
    # Given a sale of 3 units
    sale = sale_create(units=3)

    # When a buyer orders one with the lane, and another with it turned off
    fast, slow = fast_then_django(orders, django_requests, settings)

    # Then the first never reached Django and is the same 202 as Django's:
    # status, headers (but where the order is) and the body's fields
    assert fast.status_code == slow.status_code == 202
    fast_headers, slow_headers = compared(fast)[2], compared(slow)[2]
    assert fast_headers.pop("location") == fast.json()["status_url"]
    assert slow_headers.pop("location") == slow.json()["status_url"]
    assert fast_headers == slow_headers
    assert fast.json().keys() == slow.json().keys()
    assert fast.json()["status"] == "accepted"
    # and its links carry the order's own access token: the status page opens
    status = asyncio.run(_get(fast.json()["status_url"]))
    assert status.status_code == 200
    assert status.json()["number"] == fast.json()["number"]
    # and both orders were taken from Redis once each, with their outbox events
    assert counter.counter_read(slug=sale.slug) == (1, True)
    assert Order.objects.count() == 2
    placed = Order.objects.get(pk=fast.json()["id"])
    assert placed.email == order_body()["email"]
    assert placed.sale_id == sale.pk
    assert Event.objects.filter(order=placed, outbox_pending=True).count() == 1


def test_a_key_accepted_on_the_loop_replays_its_first_answer(
    orders: Orders, django_requests: DjangoRequests
) -> None:
    # Given an order placed on the loop under a key
    sale, key, first = placed_on_the_loop(orders, django_requests)

    # When the buyer sends it again, and a third time with another body
    again = orders.post(key)
    reused = orders.post(key, order_body(quantity=2))

    # Then the replay is the first answer, marked; another body is 422
    assert again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert reused.status_code == 422
    # and one order was made, one unit taken
    assert Order.objects.count() == 1
    assert counter.counter_read(slug=sale.slug) == (2, True)


def test_a_key_the_database_holds_goes_the_long_way_and_loses_nothing(
    orders: Orders, django_requests: DjangoRequests
) -> None:
    # Given an order placed on the loop, whose key Redis has since lost (a restart)
    sale, key, first = placed_on_the_loop(orders, django_requests)
    redis_get().delete(*redis_get().keys(f"*{key}*"))

    # When the buyer retries with the same key: Redis admits a unit again, the
    # loop's insert meets the key in the database
    django_requests.count = 0
    again = orders.post(key)

    # Then Django answered, the long way: the first answer, replayed
    assert django_requests.count == 1
    assert again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    # and the unit admitted for the retry is back: one order, one unit sold
    assert Order.objects.count() == 1
    assert counter.counter_read(slug=sale.slug) == (2, True)


def placed_on_the_loop(
    orders: Orders, django_requests: DjangoRequests
) -> tuple[Sale, str, httpx.Response]:
    """A sale of 3 units, and one order placed on the loop (not by Django) under a
    key: the sale, the key, the answer."""
    sale = sale_create(units=3)
    key = new_key()
    first = orders.post(key)
    assert first.status_code == 202
    assert django_requests.count == 0
    return sale, key, first


async def _get(path: str) -> httpx.Response:
    app = OrderFastLane(traced_django_asgi_application("orders-api", threads=2))
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport) as client:
            return await client.get("http://127.0.0.1" + path)
    finally:
        app.close()


def test_what_is_not_the_plain_case_is_left_to_django(
    orders: Orders, django_requests: DjangoRequests
) -> None:
    # Given a sold-out sale
    sale = sale_create(units=0)

    # When the body is not JSON, lacks a field, or the key is missing
    malformed = orders.post(new_key(), content=b"{not json")
    missing_field = orders.post(new_key(), {"sku": "ROD-MUSKIE"})
    missing_key = orders.post(None)

    # Then Django answers each precisely, as before the fast lane
    assert malformed.status_code == 400
    assert missing_field.status_code == 400
    assert missing_field.json()["fields"]["quantity"] == ["This field is required."]
    assert missing_key.status_code == 400
    assert missing_key.json()["error"] == "idempotency_key_missing"
    assert django_requests.count == 3
    # and none of them was counted against the sale
    assert counter.turned_away_count(slug=sale.slug) == 0


def test_a_counter_rebuilt_under_the_accept_rolls_it_back_and_gives_the_units_back(
    transactional_db: None,
) -> None:
    # Given a unit admitted under the counter's generation, then the counter
    # rebuilt before the accept's transaction read it
    sale = sale_create(units=3)
    admitted = counter.counter_admit(slug=sale.slug, units=1)
    verdict = redis_accept.AcceptVerdict(
        code=0, generation=admitted.generation, sale_id=admitted.sale_id
    )
    sale_counter_rebuild(sale=sale)
    given_back: list[bool] = []

    # When the loop writes the order
    outcome, idle = asyncio.run(_accept_on_loop(sale, verdict, given_back))

    # Then it went the long way: rolled back, nothing written, the units given
    # back, and its connection left idle for the next accept
    assert outcome == "long way"
    assert given_back == [True]
    assert Order.objects.count() == 0
    assert Event.objects.count() == 0
    assert idle


async def _accept_on_loop(
    sale: Sale, verdict: redis_accept.AcceptVerdict, given_back: list[bool]
) -> tuple[str, bool]:
    database = LaneDatabase(1)
    redis = aioredis.from_url(settings.REDIS_URL, decode_responses=True)

    async def give_back() -> None:
        given_back.append(True)

    key = redis_accept.KeyRef(
        scope="orders", client="c", key=new_key(), fingerprint="f"
    )
    try:
        await order_accept_on_loop(
            verdict=verdict, slug=sale.slug, quantity=1, email="a@example.com",
            traceparent=None, key=key, redis=redis, database=database,
            give_back=give_back,
        )  # fmt: skip
        outcome = "accepted"
    except LongWay:
        outcome = "long way"
    async with database.connection() as conn:
        idle = conn.info.transaction_status == pq.TransactionStatus.IDLE
    database.discard()
    await redis.aclose()
    return outcome, idle


def test_the_lane_opens_its_connections_as_the_server_starts(
    transactional_db: None, settings: Any
) -> None:
    settings.ORDERS_LOOP_WARM_CONNECTIONS = 3
    # When the server starts the app and, later, stops it
    sent, opened = asyncio.run(_lifespan())

    # Then the start-up opened that many PostgreSQL connections before the first
    # request, and both steps completed
    assert opened == 3
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_a_start_up_that_fails_still_lets_the_server_start(
    transactional_db: None, settings: Any
) -> None:
    # Given a Redis that refuses connections
    settings.REDIS_URL = "redis://127.0.0.1:9/0"

    sent, opened = asyncio.run(_lifespan())

    # Then the server starts anyway: the lanes open what they need as they go
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert opened == 0


async def _lifespan() -> tuple[list[str], int]:
    """The service's own entry point (orders_api.asgi) started and stopped as an ASGI
    server does; and how many connections the lane held in between."""
    from orders_api.asgi import application

    messages = iter(["lifespan.startup", "lifespan.shutdown"])
    sent: list[str] = []
    opened: list[int] = []

    async def receive() -> dict[str, str]:
        if sent:  # started: what the lane holds before the first request
            opened.append(len(lane_database()._free))
        return {"type": next(messages)}

    async def send(message: dict[str, str]) -> None:
        sent.append(message["type"])

    server: Any = application  # asgiref's stubs type the messages; plain dicts here
    await server({"type": "lifespan"}, receive, send)
    return sent, opened[0]
