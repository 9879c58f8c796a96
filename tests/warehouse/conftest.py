"""Fixtures of the warehouse tests: real gunicorn processes, each with its own database.

`warehouse` is the small one the flood tests need (capacity 2, 300 ms per order);
`roomy_warehouse` admits every request of the concurrency test (capacity 32).
`gate_held` fills a warehouse's packing slots with orders that wait until released,
so a flood test does not depend on its requests all arriving within 300 ms.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from tests.support import stack
from tests.support.processes import RunningService, database_url
from tests.support.stack import INTERNAL_AUTH
from tests.warehouse.orders import new_order_ref, order_payload


@dataclass
class WarehouseProcess:
    service: RunningService
    db_name: str
    capacity: int

    @property
    def url(self) -> str:
        return self.service.url

    def client(self) -> httpx.Client:
        """A client of the warehouse's own callers: it sends the internal token."""
        return httpx.Client(base_url=self.url, timeout=30.0, headers=INTERNAL_AUTH)

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
    with stack.warehouse_process(
        db_name, capacity=capacity, handling_ms=handling_ms, migrate=migrate
    ) as service:
        yield WarehouseProcess(service=service, db_name=db_name, capacity=capacity)


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


@contextmanager
def gate_held(process: WarehouseProcess) -> Iterator[list[str]]:
    """Every packing slot taken by an order that waits until the block ends.

    The orders are admitted, then block on writing their fulfilment: the table is
    locked (SHARE) by this test's transaction. On leaving, the lock goes and the
    holders are fulfilled. Yields the holders' order refs.
    """
    holders = [new_order_ref() for _ in range(process.capacity)]
    answers: dict[str, int] = {}
    errors: list[BaseException] = []

    def hold(ref: str) -> None:
        try:
            with process.client() as client:
                answers[ref] = client.post(
                    "/fulfilments/", json=order_payload(ref)
                ).status_code
        except BaseException as error:  # surfaced below, in the test's thread
            errors.append(error)

    with psycopg.connect(database_url(process.db_name)) as lock:
        lock.execute("LOCK TABLE warehouse_fulfillment IN SHARE MODE")
        threads = [threading.Thread(target=hold, args=(ref,)) for ref in holders]
        for thread in threads:
            thread.start()
        try:
            deadline = time.monotonic() + 60
            with process.client() as client:
                while client.get("/stats/").json()["in_flight"] < process.capacity:
                    assert time.monotonic() < deadline, "the holders never got in"
                    time.sleep(0.05)
            yield holders
        finally:
            lock.rollback()
            for thread in threads:
                thread.join(60)
    assert not errors, errors
    assert answers == dict.fromkeys(holders, 201), answers
