"""The worker's slots at a real warehouse: a freed slot goes at once to an order
waiting for it, while the order that freed it is still being reported; the
warehouse never holds more of the worker's orders than its slots; the Procfile's
worker runs its standby threads and still keeps to its slots."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest
from celery import Celery
from django.conf import settings as django_settings

from common import events
from common.harness.databases import database_url
from common.harness.services import procfile_process
from fulfillment_queue import services, slots
from tests.broker import queue_messages
from tests.fulfillment_queue.conftest import accepted_event
from tests.support.processes import RunningService
from tests.support.stack import INTERNAL_AUTH, INTERNAL_TOKEN, warehouse_process

SLOW_WAREHOUSE_DB = "fq_slow_warehouse"
HANDLING_MS = 300


@pytest.fixture(scope="module")
def slow_warehouse() -> Iterator[RunningService]:
    """A warehouse that packs in 300 ms: long enough to see who waits for whom."""
    with warehouse_process(
        SLOW_WAREHOUSE_DB, capacity=4, handling_ms=HANDLING_MS
    ) as service:
        yield service


@pytest.fixture
def one_slot(
    settings: Any, slow_warehouse: RunningService, monkeypatch: pytest.MonkeyPatch
) -> RunningService:
    """This process as a worker of one slot at the slow warehouse, whose window of
    statistics starts now."""
    settings.WAREHOUSE_URL = slow_warehouse.url
    settings.INTERNAL_API_TOKEN = INTERNAL_TOKEN
    settings.FULFILLMENT_CONCURRENCY = 1
    monkeypatch.setattr(slots, "_slots", None)
    reset = httpx.post(f"{slow_warehouse.url}/stats/reset", headers=INTERNAL_AUTH)
    assert reset.status_code == 200, reset.text
    return slow_warehouse


def packed_at(order_ref: str) -> float:
    """When the warehouse recorded the order packed (epoch seconds)."""
    with psycopg.connect(database_url(SLOW_WAREHOUSE_DB)) as conn:
        row = conn.execute(
            "SELECT extract(epoch FROM created_at) FROM warehouse_fulfillment "
            "WHERE order_ref = %s",
            (order_ref,),
        ).fetchone()
    assert row is not None, f"{order_ref} was not packed"
    return float(row[0])


def peak_of_the_queue(warehouse: RunningService) -> int:
    stats = httpx.get(f"{warehouse.url}/stats/").json()
    return int(stats["peak_in_flight_by_source"].get("MU", 0))


class SlowReports:
    """A publisher whose "fulfilled" reports take `seconds` each (a busy broker, a
    busy CPU); it notes when each report was done."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.done: dict[str, float] = {}

    def __call__(self, *, task: str, envelope: events.Payload, queue: str) -> None:
        batch = envelope if isinstance(envelope, list) else [envelope]
        if batch[0]["type"] == events.ORDER_FULFILLED:
            time.sleep(self.seconds)
        for one in batch:
            self.done[f"{one['type']} {one['data']['order_number']}"] = time.time()


def test_a_freed_slot_goes_to_the_waiting_order_before_the_first_is_reported(
    one_slot: RunningService, settings: Any
) -> None:
    # Given a worker of one slot whose reports take a second, each sent as its
    # order is packed, and two threads with an order each
    settings.FULFILLMENT_REPORT_SECONDS = 0
    reports = SlowReports(seconds=1.0)
    first, second = accepted_event(), accepted_event()

    def fulfil(event: dict[str, Any]) -> None:
        services.orders_fulfill(raws=[event], publish=reports, budget_seconds=60)

    # When the first takes the slot and the second comes while it is packed
    threads = [threading.Thread(target=fulfil, args=(first,))]
    threads[0].start()
    _until(lambda: slots.warehouse_slots().stats().in_use == 1)
    threads.append(threading.Thread(target=fulfil, args=(second,)))
    threads[1].start()
    for thread in threads:
        thread.join(timeout=30)

    # Then the second order was packed before the first one's report was done
    refs = [e["data"]["order_number"] for e in (first, second)]
    first_reported = reports.done[f"{events.ORDER_FULFILLED} {refs[0]}"]
    assert packed_at(refs[0]) < packed_at(refs[1]) < first_reported
    # And the warehouse never held two of the worker's orders at once
    assert peak_of_the_queue(one_slot) == 1
    assert slots.warehouse_slots().stats().peak == 1


def test_threads_beyond_the_slots_wait_for_one(
    one_slot: RunningService, settings: Any
) -> None:
    # Given a worker of one slot and four threads with a batch of two orders each
    settings.FULFILLMENT_REPORT_SECONDS = 0
    batches = [[accepted_event(), accepted_event()] for _ in range(4)]
    reports: list[services.BatchReport] = []

    def fulfil(batch: list[dict[str, Any]]) -> None:
        reports.append(
            services.orders_fulfill(
                raws=batch, publish=SlowReports(seconds=0.1), budget_seconds=60
            )
        )

    # When they all go at once
    threads = [threading.Thread(target=fulfil, args=(b,)) for b in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # Then every order was packed, once, one at a time
    assert sorted(ref for r in reports for ref in r.fulfilled) == sorted(
        e["data"]["order_number"] for b in batches for e in b
    )
    times = sorted(packed_at(e["data"]["order_number"]) for b in batches for e in b)
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert min(gaps) >= HANDLING_MS / 1000 * 0.9
    assert peak_of_the_queue(one_slot) == 1


def test_the_procfile_worker_runs_its_standby_threads_within_its_slots(
    one_slot: RunningService, queues: dict[str, str]
) -> None:
    # Given the Procfile's worker with one slot and two threads on standby
    env = {
        "REDIS_URL": django_settings.REDIS_URL,
        "FULFILLMENT_QUEUE": queues["fulfillment"],
        "ORDERS_EVENTS_QUEUE": queues["events"],
        "WAREHOUSE_URL": one_slot.url,
        "INTERNAL_API_TOKEN": INTERNAL_TOKEN,
        "FULFILLMENT_CONCURRENCY": "1",
        "FULFILLMENT_STANDBY": "2",
        "SALE_PATH_CPUS": "",
    }
    orders = [accepted_event() for _ in range(6)]
    with procfile_process("fulfillment-worker", env=env, tag="slots") as worker:
        # When a backlog of six orders, in three messages, waits for it
        app = Celery(broker=django_settings.REDIS_URL)
        for start in range(0, 6, 2):
            app.send_task(
                events.HANDLE_ORDER_ACCEPTED,
                args=[orders[start : start + 2]],
                queue=queues["fulfillment"],
            )
        refs = [e["data"]["order_number"] for e in orders]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(_packed(refs)) < 6:
            time.sleep(0.2)
        banner = worker.log()

    # Then it ran three threads, and all six orders were packed once, one at a time
    assert "concurrency: 3 (thread)" in banner
    assert sorted(_packed(refs)) == sorted(refs)
    assert peak_of_the_queue(one_slot) == 1
    # And each was reported started and fulfilled to the orders side
    sent = queue_messages(django_settings.REDIS_URL, queues["events"])
    reported = sorted(
        (e["type"], e["data"]["order_number"]) for m in sent for e in m.envelopes
    )
    assert reported == sorted(
        (kind, ref)
        for kind in (events.ORDER_STARTED, events.ORDER_FULFILLED)
        for ref in refs
    )


def _until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.005)


def _packed(refs: list[str]) -> list[str]:
    with psycopg.connect(database_url(SLOW_WAREHOUSE_DB)) as conn:
        rows = conn.execute(
            "SELECT order_ref FROM warehouse_fulfillment WHERE order_ref = ANY(%s)",
            (refs,),
        ).fetchall()
    return [row[0] for row in rows]
