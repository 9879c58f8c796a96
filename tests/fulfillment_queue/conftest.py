"""Fixtures of the fulfillment queue's tests: a real warehouse process, real Redis
(queues of this test's own), the queue's own database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings

from tests.support.processes import RunningService
from tests.support.stack import warehouse_process


@pytest.fixture(scope="session")
def warehouse() -> Iterator[RunningService]:
    with warehouse_process("fq_warehouse", capacity=2, handling_ms=5) as service:
        yield service


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
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], str]] = []

    def __call__(self, *, task: str, envelope: dict[str, Any], queue: str) -> None:
        self.sent.append((task, envelope, queue))
