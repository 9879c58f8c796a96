"""Fixtures of the fulfillment queue's tests: a real warehouse process, a real orders
service (a replay asks it for the order's units), real Redis (queues of this test's
own), the queue's own database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import redis
from django.conf import settings as django_settings

from common import events
from common.harness.services import ORDERS_SETTINGS, procfile_process
from tests.support.processes import (
    RunningService,
    database_drop,
    database_recreate,
    database_url,
    manage,
)
from tests.support.stack import INTERNAL_TOKEN, warehouse_process

ORDERS_DB = "fq_orders"


@pytest.fixture(scope="session")
def warehouse() -> Iterator[RunningService]:
    with warehouse_process("fq_warehouse", capacity=2, handling_ms=5) as service:
        yield service


@pytest.fixture(scope="session")
def orders_service() -> Iterator[RunningService]:
    """The Procfile's orders service on a fresh, empty database of its own."""
    env = {
        "ORDERS_DATABASE_URL": database_url(ORDERS_DB),
        "INTERNAL_API_TOKEN": INTERNAL_TOKEN,
        "REDIS_URL": django_settings.REDIS_URL,
        "ORDERS_REDIS_PREFIX": f"fq-orders-{uuid.uuid4().hex[:8]}",
        "ORDERS_WORKERS": "1",
        "DJANGO_DEBUG": "0",
    }
    database_recreate(ORDERS_DB)
    try:
        manage(ORDERS_SETTINGS, "migrate", "--no-input", "-v", "0", env=env)
        with procfile_process("orders", env=env, tag=ORDERS_DB) as service:
            yield service
    finally:
        database_drop(ORDERS_DB)


@pytest.fixture
def to_orders(settings: Any, orders_service: RunningService) -> RunningService:
    """Replays in this test ask the orders service above."""
    settings.ORDERS_URL = orders_service.url
    settings.INTERNAL_API_TOKEN = INTERNAL_TOKEN
    return orders_service


SALE_INSERT = """
INSERT INTO orders_api_sale (slug, status, sku, name, price, description, image,
  category_name, category_slug, units_requested, units_allocated, units_sold,
  units_returned, units_released, open_transfer_id, close_transfer_id, created_at,
  updated_at)
VALUES ('muskie-casting-rod', %s, 'ROD-MUSKIE', 'Muskie Casting Rod', 149.99, '', '',
  'Rods', 'rods', 1, 1, %s, 0, %s, %s, '', now(), now())
RETURNING id
"""
ORDER_INSERT = """
INSERT INTO orders_api_order (id, number, sale_id, sku, name, unit_price, quantity,
  total, email, status, access_token_hash, trace_id, tallied, units_released,
  created_at, updated_at)
VALUES (%s, %s, %s, 'ROD-MUSKIE', 'Muskie Casting Rod', 149.99, 1, 149.99,
  'angler@example.com', %s, '', '', true, %s, now(), now())
"""


def order_known(*, failed_in_closed_sale: bool = False) -> str:
    """An order the orders service knows (its number): on its way to the warehouse,
    or failed with its unit given back to a sale that has closed since."""
    number = f"MU-{uuid.uuid4().hex[:10].upper()}"
    released = failed_in_closed_sale
    status, sale_status = ("failed", "closed") if released else ("queued", "closed")
    with psycopg.connect(database_url(ORDERS_DB)) as conn:
        row = conn.execute(
            SALE_INSERT, (sale_status, 0 if released else 1, int(released), number)
        ).fetchone()
        assert row is not None
        conn.execute(ORDER_INSERT, (uuid.uuid4(), number, row[0], status, released))
    return number


@pytest.fixture(autouse=True)
def queues(settings: Any) -> Iterator[dict[str, str]]:
    """Queue names of this test only; their Redis lists are deleted afterwards."""
    tag = uuid.uuid4().hex[:8]
    names = {"fulfillment": f"fq-{tag}", "events": f"fq-events-{tag}"}
    settings.FULFILLMENT_QUEUE = names["fulfillment"]
    settings.ORDERS_EVENTS_QUEUE = names["events"]
    yield names
    broker = redis.Redis.from_url(django_settings.REDIS_URL)
    broker.delete(*names.values())


def queued(name: str) -> int:
    """Messages waiting in a queue (the broker's Redis list)."""
    return int(redis.Redis.from_url(django_settings.REDIS_URL).llen(name))


def accepted_event(number: str | None = None, **data: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": "orders.order-accepted",
        "source": "orders",
        "time": "2026-11-26T09:00:00+00:00",
        "trace_id": uuid.uuid4().hex,
        "version": 1,
        "data": {
            "order_number": number or f"MU-{uuid.uuid4().hex[:10].upper()}",
            "sku": "ROD-MUSKIE",
            "quantity": 1,
            **data,
        },
    }


class Recorder:
    """A publisher that keeps what it was given: `sent` one entry per envelope (a
    batch's in order), `messages` one per message."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], str]] = []
        self.messages: list[events.Payload] = []

    def __call__(self, *, task: str, envelope: events.Payload, queue: str) -> None:
        self.messages.append(envelope)
        batch = envelope if isinstance(envelope, list) else [envelope]
        self.sent.extend((task, one, queue) for one in batch)
