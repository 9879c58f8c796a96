"""Fixtures of the orders service's tests: real PostgreSQL and Redis, in-process.

Each test gets Redis names of its own (ORDERS_REDIS_PREFIX), so nothing leaks between
tests or into another checkout's run. Tests that cross process boundaries (workers,
the warehouse, websockets) use the stack in tests/support/orders_stack.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.core.signals import request_started
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from orders_api.admission.redis_client import redis_get
from orders_api.models import Sale
from orders_api.ordering.clients import idempotency_client
from orders_api.sales import selectors
from orders_api.sales import services as sales


@pytest.fixture(autouse=True)
def site_dir(settings: Any, tmp_path: Path) -> Path:
    """Where `sale open` builds the minisite in this test: never the checkout's."""
    settings.SALE_SITE_DIR = tmp_path / "site"
    return Path(settings.SALE_SITE_DIR)


@pytest.fixture(autouse=True)
def redis_names(settings: Any) -> Iterator[str]:
    """Redis keys of this test only; deleted afterwards."""
    prefix = f"test-orders-{uuid.uuid4().hex[:8]}"
    settings.ORDERS_REDIS_PREFIX = prefix
    settings.ORDERS_RATE_LIMIT = 1000
    selectors._sale_cache.clear()
    selectors._sale_snapshots.clear()
    yield prefix
    client = redis_get()
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    selectors._sale_cache.clear()
    selectors._sale_snapshots.clear()


def sale_create(*, units: int = 10, status: str = Sale.Status.OPEN) -> Sale:
    """An open sale of the Muskie rod, as `sale open` leaves it (no shop needed)."""
    sale = Sale.objects.create(
        slug="muskie-casting-rod",
        status=status,
        sku="ROD-MUSKIE",
        name="Muskie Casting Rod",
        price=Decimal("149.99"),
        description="A stout, fast-action graphite blank.",
        image="shop/img/muskie-casting-rod.svg",
        category_name="Rods",
        category_slug="rods",
        units_requested=units,
        units_allocated=units,
        open_transfer_id=f"test-{uuid.uuid4().hex}",
    )
    sales.sale_counter_rebuild(sale=sale)
    return sale


@pytest.fixture
def sale(transactional_db: None) -> Sale:
    return sale_create(units=10)


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def browser() -> Client:
    return Client(enforce_csrf_checks=True)


def order_body(**overrides: Any) -> dict[str, Any]:
    return {
        "sku": "ROD-MUSKIE",
        "quantity": 1,
        "email": "angler@example.com",
        **overrides,
    }


def new_key() -> str:
    return str(uuid.uuid4())


def address_client(*, secret: str | None = None, address: str = "127.0.0.1") -> str:
    """The idempotency client of a test client at `address` (with its secret)."""
    request = RequestFactory().post("/", REMOTE_ADDR=address)
    return idempotency_client(request, secret=secret)


# Set per answer by the transport or the server, not by the view; and the trace's
# id, which differs from request to request.
UNCOMPARED = {"content-length", "date", "server", "x-trace-id"}


class DjangoRequests:
    """How many requests reached Django's handler (its request_started signal)."""

    def __init__(self) -> None:
        self.count = 0
        request_started.connect(self._started)

    def _started(self, **_: Any) -> None:
        self.count += 1

    def close(self) -> None:
        request_started.disconnect(self._started)


@pytest.fixture
def django_requests() -> Iterator[DjangoRequests]:
    seen = DjangoRequests()
    yield seen
    seen.close()


def compared(response: httpx.Response) -> tuple[int, Any, dict[str, str]]:
    headers = {k: v for k, v in response.headers.items() if k not in UNCOMPARED}
    return response.status_code, response.json(), headers


def call(method: str, path: str, **kw: Any) -> httpx.Response:
    """One request to the orders service's HTTP app as asgi.py builds it, served
    in-process on an event loop of its own."""
    return asyncio.run(_call(method, path, **kw))


async def _call(method: str, path: str, **kw: Any) -> httpx.Response:
    # Imported here: orders_api.asgi sets Django up as it is imported.
    from orders_api.asgi import traced_django_asgi_application
    from orders_api.web.fast_lane import OrderFastLane
    from orders_api.web.status_lane import OrderStatusLane

    app = OrderFastLane(
        OrderStatusLane(traced_django_asgi_application("orders-api", threads=2))
    )
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport) as client:
            return await client.request(method, "http://127.0.0.1" + path, **kw)
    finally:
        app.close()


def order_placed(email: str = "angler@example.com") -> dict[str, Any]:
    """A sale of 3 and an order placed through the API in-process: its 202's body
    (links with its access token)."""
    sale_create(units=3)
    answer = call(
        "POST",
        "/api/orders/",
        json={"sku": "ROD-MUSKIE", "quantity": 1, "email": email},
        headers={"Idempotency-Key": new_key()},
    )
    assert answer.status_code == 202
    return answer.json()
