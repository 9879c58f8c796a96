"""The warehouse obeys the faults in force, read live (warehouse/faults.py).

A real gunicorn warehouse on a database of its own; the faults are set in real Redis
under a key prefix of this module's, as `manage.py faults set` sets them, and the
process picks them up without a restart.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from common import faults
from tests.support import stack
from tests.support.orders_stack import wait_until
from tests.support.stack import INTERNAL_AUTH
from tests.warehouse.conftest import WarehouseProcess
from tests.warehouse.orders import new_order_ref, order_payload

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
PREFIX = f"faults-wh-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def store() -> Iterator[faults.FaultStore]:
    store = faults.fault_store(REDIS_URL, prefix=PREFIX)
    yield store
    faults.fault_clear(store=store)


@pytest.fixture(scope="module")
def warehouse(store: faults.FaultStore) -> Iterator[WarehouseProcess]:
    env = {"REDIS_URL": REDIS_URL, "FAULTS_KEY_PREFIX": PREFIX}
    env["FAULTS_POLL_SECONDS"] = "0.1"
    with stack.warehouse_process(
        "test_wh_faults", capacity=8, handling_ms=20, env=env
    ) as service:
        yield WarehouseProcess(service=service, db_name="test_wh_faults", capacity=8)


@pytest.fixture(autouse=True)
def no_fault(store: faults.FaultStore) -> Iterator[None]:
    faults.fault_clear(store=store)
    yield
    faults.fault_clear(store=store)


def post(warehouse: WarehouseProcess, ref: str) -> httpx.Response:
    with warehouse.client() as client:
        return client.post("/fulfilments/", json=order_payload(ref))


def until_answered(warehouse: WarehouseProcess, status: int) -> httpx.Response:
    """The fault is read within a poll: post fresh orders until one meets it."""
    return wait_until(
        lambda: (r := post(warehouse, new_order_ref())).status_code == status and r,
        timeout=10,
        what=f"an order answered {status}",
    )


def test_a_warehouse_down_answers_503_and_packs_nothing_until_cleared(
    warehouse: WarehouseProcess, store: faults.FaultStore
) -> None:
    # Given the warehouse is switched down, live
    faults.fault_set(name="warehouse.down", value=True, ttl=30, store=store)
    answer = until_answered(warehouse, 503)

    # Then an order is refused with 503, Retry-After and a precise code; no row
    assert answer.json()["error"] == "warehouse_down"
    assert answer.headers["Retry-After"] == "1"
    refused_ref = new_order_ref()
    assert post(warehouse, refused_ref).status_code == 503
    assert warehouse.fulfillment_count(refused_ref) == 0
    # And its health and stats still answer, the stats counting the refusals
    assert httpx.get(warehouse.url + "/healthz").status_code == 200
    stats = httpx.get(warehouse.url + "/stats/").json()
    assert stats["fault_refusals"]["warehouse_down"] >= 2

    # When the fault is cleared, the same order is packed
    faults.fault_clear(name="warehouse.down", store=store)
    wait_until(
        lambda: post(warehouse, refused_ref).status_code == 201,
        timeout=10,
        what="the order packed once the warehouse is back",
    )
    assert warehouse.fulfillment_count(refused_ref) == 1


def test_an_error_rate_of_one_answers_500_to_every_order_and_packs_none(
    warehouse: WarehouseProcess, store: faults.FaultStore
) -> None:
    faults.fault_set(name="warehouse.error_rate", value="1", ttl=30, store=store)
    until_answered(warehouse, 500)
    refs = [new_order_ref() for _ in range(5)]
    answers = [post(warehouse, ref) for ref in refs]
    assert {a.status_code for a in answers} == {500}
    assert {a.json()["error"] for a in answers} == {"injected_failure"}
    assert sum(warehouse.fulfillment_count(ref) for ref in refs) == 0


def test_a_capacity_fault_narrows_the_gate_and_latency_holds_each_order(
    warehouse: WarehouseProcess, store: faults.FaultStore
) -> None:
    # Given capacity 1 (instead of 8) and each order taking 1.5 s more
    faults.fault_set(name="warehouse.capacity", value=1, ttl=30, store=store)
    faults.fault_set(name="warehouse.latency_ms", value=1500, ttl=30, store=store)
    wait_until(
        lambda: httpx.get(warehouse.url + "/stats/").json()["capacity"] == 1,
        timeout=10,
        what="the gate narrowed",
    )

    # When one order is being packed and a second arrives
    first = new_order_ref()
    answers: dict[str, httpx.Response] = {}
    packing = threading.Thread(target=lambda: answers.update(a=post(warehouse, first)))
    started = time.monotonic()
    packing.start()
    wait_until(
        lambda: httpx.get(warehouse.url + "/stats/").json()["in_flight"] == 1,
        timeout=5,
        what="the first order in flight",
    )
    second = post(warehouse, new_order_ref())
    packing.join()

    # Then the second is refused at capacity, the first took the extra time
    assert second.status_code == 503
    assert second.json()["error"] == "at_capacity"
    assert answers["a"].status_code == 201
    assert time.monotonic() - started >= 1.5

    # And once cleared the gate is the setting's again
    faults.fault_clear(store=store)
    wait_until(
        lambda: (
            post(warehouse, new_order_ref()).status_code == 201
            and httpx.get(warehouse.url + "/stats/").json()["capacity"] == 8
        ),
        timeout=10,
        what="capacity 8 again",
    )


def test_a_fault_past_its_ttl_no_longer_holds_the_warehouse(
    warehouse: WarehouseProcess, store: faults.FaultStore
) -> None:
    faults.fault_set(name="warehouse.down", value=True, ttl=1.0, store=store)
    until_answered(warehouse, 503)
    time.sleep(1.1)
    assert post(warehouse, new_order_ref()).status_code == 201


def test_stats_reset_zeroes_the_refusals_by_fault(
    warehouse: WarehouseProcess, store: faults.FaultStore
) -> None:
    faults.fault_set(name="warehouse.down", value=True, ttl=30, store=store)
    until_answered(warehouse, 503)
    reset = httpx.post(warehouse.url + "/stats/reset", headers=INTERNAL_AUTH).json()
    assert reset["fault_refusals"] == {}
