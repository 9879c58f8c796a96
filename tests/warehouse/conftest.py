"""Fixtures of the warehouse tests: real gunicorn processes, each with its own database.

`warehouse` is the small one the flood tests need (capacity 2, 300 ms per order);
`roomy_warehouse` admits every request of the concurrency test (capacity 32).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from tests.support.processes import (
    RunningService,
    database_drop,
    database_recreate,
    database_url,
    gunicorn_service,
    manage,
)
from tests.warehouse.orders import new_order_ref

SETTINGS = "fulfillment_queue.warehouse.settings"
WSGI_APP = "fulfillment_queue.warehouse.wsgi"


@dataclass
class WarehouseProcess:
    service: RunningService
    db_name: str
    capacity: int

    @property
    def url(self) -> str:
        return self.service.url

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0)

    def _scalar(self, query: str, params: Sequence[Any] = ()) -> int:
        with psycopg.connect(database_url(self.db_name)) as conn:
            row = conn.execute(query, params).fetchone()
        assert row is not None
        return int(row[0])

    def fulfillment_count(self, order_ref: str | None = None) -> int:
        if order_ref is None:
            return self._scalar("SELECT count(*) FROM warehouse_fulfillment")
        return self._scalar(
            "SELECT count(*) FROM warehouse_fulfillment WHERE order_ref = %s",
            [order_ref],
        )

    def refusal_count(self, order_ref: str | None = None) -> int:
        if order_ref is None:
            return self._scalar("SELECT count(*) FROM warehouse_refusal")
        return self._scalar(
            "SELECT count(*) FROM warehouse_refusal WHERE order_ref = %s", [order_ref]
        )


@contextmanager
def warehouse_process(
    db_name: str, *, capacity: int, handling_ms: int, migrate: bool = True
) -> Iterator[WarehouseProcess]:
    """A migrated database of its own and one gunicorn worker with 32 threads."""
    env = {
        "FULFILLMENT_DATABASE_URL": database_url(db_name),
        "WAREHOUSE_CAPACITY": str(capacity),
        "WAREHOUSE_HANDLING_MS": str(handling_ms),
        "DJANGO_DEBUG": "0",
    }
    if migrate:
        database_recreate(db_name)
    else:
        database_drop(db_name)
    try:
        if migrate:
            manage(SETTINGS, "migrate", "--no-input", "-v", "0", env=env)
        with gunicorn_service(
            f"warehouse-{db_name}",
            WSGI_APP,
            settings_module=SETTINGS,
            env=env,
            workers=1,
            threads=32,
            ready_path="/healthz",
        ) as service:
            yield WarehouseProcess(service=service, db_name=db_name, capacity=capacity)
    finally:
        database_drop(db_name)


@pytest.fixture(scope="session")
def warehouse() -> Iterator[WarehouseProcess]:
    with warehouse_process("test_wh_proc", capacity=2, handling_ms=300) as process:
        yield process


@pytest.fixture(scope="session")
def roomy_warehouse() -> Iterator[WarehouseProcess]:
    with warehouse_process(
        "test_wh_proc_roomy", capacity=32, handling_ms=300
    ) as process:
        yield process


@pytest.fixture
def order_ref() -> str:
    return new_order_ref()
