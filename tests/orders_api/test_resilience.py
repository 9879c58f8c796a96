"""Failures on the order path, with real processes: a worker killed mid-fulfilment,
a relay killed mid-batch, Redis flushed mid-sale, the warehouse down for a while, an
order that keeps failing."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from tests.broker import order_numbers, queue_messages
from tests.orders_api.flood import Answer, buyers
from tests.support.orders_stack import OrdersStack, orders_stack, wait_until
from tests.support.processes import database_url
from tests.support.redis_server import redis_server

pytestmark = pytest.mark.stack


def statuses_of(stack: OrdersStack, numbers: set[str]) -> Counter[str]:
    rows = stack.sql(
        "orders",
        "SELECT status FROM orders_api_order WHERE number = ANY(%s)",
        [list(numbers)],
    )
    return Counter(row[0] for row in rows)


def test_a_worker_killed_mid_fulfilment_fulfils_the_order_exactly_once() -> None:
    # Given a slow warehouse (1.5 s per order) and a short visibility timeout
    with orders_stack(
        "kill",
        warehouse_handling_ms=1500,
        env={
            "FULFILLMENT_VISIBILITY_TIMEOUT": "3",
            "FULFILLMENT_RESTORE_INTERVAL": "1",
        },
    ) as stack:
        stack.sale_reopen(3)
        worker = stack.fulfillment_worker(FULFILLMENT_CONCURRENCY="1")
        number = buyers(stack.orders.url, 1)[0].body["number"]
        wait_until(
            lambda: stack.warehouse_stats()["in_flight"] == 1,
            what="the order in the warehouse's hands",
        )

        # When the worker is killed (SIGKILL) while the warehouse is packing it
        worker.kill()
        assert statuses_of(stack, {number})["fulfilled"] == 0

        # Then a new worker gets the message back and the order is fulfilled, once
        stack.fulfillment_worker(FULFILLMENT_CONCURRENCY="1")
        wait_until(
            lambda: statuses_of(stack, {number})["fulfilled"] == 1,
            timeout=60,
            what="the order fulfilled after the restart",
        )
        assert stack.warehouse_refs().count(number) == 1
        fulfilled_events = stack.sql(
            "orders",
            "SELECT count(*) FROM orders_api_event e JOIN orders_api_order o "
            "ON o.id = e.order_id WHERE o.number = %s AND e.type = %s",
            [number, "fulfillment.order-fulfilled"],
        )
        assert fulfilled_events[0][0] == 1


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[str]:
    """A Redis server of this test's own: FLUSHALL here touches nobody else."""
    with redis_server(tmp_path) as url:
        yield url


def test_redis_flushed_mid_sale_loses_nothing_accepted_and_oversells_nothing(
    private_redis: str,
) -> None:
    with orders_stack(
        "flush",
        redis_url=private_redis,
        env={"ORDERS_REDELIVER_SECONDS": "4"},
    ) as stack:
        # Given a sale of 60 and a worker
        stack.sale_reopen(60)
        stack.fulfillment_worker()
        answers: list[Answer] = []

        # When 150 buyers arrive and Redis loses everything in the middle
        def first_wave() -> None:
            answers.extend(buyers(stack.orders.url, 150))

        wave = threading.Thread(target=first_wave)
        wave.start()
        wait_until(
            lambda: (
                stack.sql("orders", "SELECT count(*) FROM orders_api_order")[0][0] >= 10
            ),
            what="the first orders",
        )
        redis.Redis.from_url(private_redis).flushall()
        wave.join()
        # and more buyers come after the flush
        answers.extend(buyers(stack.orders.url, 60))

        # Then exactly the allocation was accepted, every accepted order exists
        accepted = {a.body["number"] for a in answers if a.status == 202}
        refused = Counter(a.body["error"] for a in answers if a.status != 202)
        assert len(accepted) == 60
        assert set(refused) <= {"sold_out", "busy"}, refused
        rows = stack.sql("orders", "SELECT number FROM orders_api_order")
        assert {row[0] for row in rows} == accepted
        # And every one of them is fulfilled exactly once, lost messages included
        wait_until(
            lambda: statuses_of(stack, accepted)["fulfilled"] == 60,
            timeout=120,
            what="60 fulfilled orders",
        )
        refs = [ref for ref in stack.warehouse_refs() if ref in accepted]
        assert sorted(refs) == sorted(accepted)
        assert stack.warehouse_stats()["refused"] == 0


@pytest.fixture(scope="module")
def outage_stack() -> Iterator[OrdersStack]:
    with orders_stack("outage") as stack:
        yield stack


def test_orders_wait_while_the_warehouse_is_down_and_are_fulfilled_after(
    outage_stack: OrdersStack,
) -> None:
    stack = outage_stack
    # Given a worker and a warehouse that goes down
    stack.sale_reopen(5)
    worker = stack.fulfillment_worker(FULFILLMENT_MAX_RETRIES="50")
    stack.warehouse.stop()

    # When 5 orders are placed while it is down
    accepted = {a.body["number"] for a in buyers(stack.orders.url, 5)}
    wait_until(
        lambda: worker.log().count("Retry in") >= 10,
        what="the worker retrying against the missing warehouse",
    )
    assert statuses_of(stack, accepted)["fulfilled"] == 0

    # Then once the warehouse is back they are all fulfilled, none dead-lettered
    stack.warehouse.start()
    wait_until(
        lambda: statuses_of(stack, accepted)["fulfilled"] == 5,
        timeout=60,
        what="5 fulfilled orders",
    )
    assert stack.queue_manage("fulfillment", "dlq", "list").strip() == "no dead letters"
    worker.stop()


def test_an_order_that_keeps_failing_is_dead_lettered_and_replay_completes_it(
    outage_stack: OrdersStack,
) -> None:
    stack = outage_stack
    # Given a worker that gives up after one retry, and the warehouse down
    stack.sale_reopen(5)
    stack.fulfillment_worker(FULFILLMENT_MAX_RETRIES="1")
    stack.warehouse.stop()
    number = buyers(stack.orders.url, 1)[0].body["number"]

    # When the retries run out, the order is a dead letter and shows as failed
    wait_until(
        lambda: statuses_of(stack, {number})["failed"] == 1,
        what="the order failed",
    )
    listing = stack.queue_manage("fulfillment", "dlq", "list")
    assert number in listing
    assert "warehouse unreachable" in listing

    # Then with the warehouse back, a replay completes it
    stack.warehouse.start()
    replay = stack.queue_manage("fulfillment", "dlq", "replay", "--all")
    assert "1 dead letters sent to the queue again" in replay
    wait_until(
        lambda: statuses_of(stack, {number})["fulfilled"] == 1,
        what="the replayed order fulfilled",
    )
    assert stack.warehouse_refs().count(number) == 1
    assert stack.queue_manage("fulfillment", "dlq", "list").strip() == "no dead letters"


def test_a_relay_killed_mid_batch_loses_and_duplicates_no_order() -> None:
    with orders_stack("relaykill") as stack:
        # Given 20 orders accepted while neither relay nor fulfillment worker runs
        stack.sale_reopen(20)
        stack.relay.kill()
        accepted = {a.body["number"] for a in buyers(stack.orders.url, 20)}
        assert len(accepted) == 20
        queue = stack.env["FULFILLMENT_QUEUE"]
        broker = stack.env["REDIS_URL"]
        # and one order's row held, so that the relay's pass blocks at its last
        # step: marking the orders queued, before its transaction commits
        with psycopg.connect(database_url(stack.databases["orders"])) as holder:
            holder.execute(
                "SELECT 1 FROM orders_api_order WHERE number = %s FOR UPDATE",
                [sorted(accepted)[0]],
            )
            # When a relay publishes the whole batch and is killed (SIGKILL)
            # before it could commit
            stack.relay.start()
            wait_until(
                lambda: len(order_numbers(queue_messages(broker, queue))) == 20,
                what="the relay's batch on the broker",
            )
            stack.relay.kill()
            holder.rollback()
        assert statuses_of(stack, accepted) == Counter({"accepted": 20})

        # Then a new relay publishes the batch again: every order twice on the queue
        stack.relay.start()
        wait_until(
            lambda: len(order_numbers(queue_messages(broker, queue))) == 40,
            what="the batch published again",
        )
        assert Counter(order_numbers(queue_messages(broker, queue))) == Counter(
            dict.fromkeys(accepted, 2)
        )
        # (in messages of up to ORDERS_RELAY_BUNDLE orders each)
        messages = len(queue_messages(broker, queue))
        # and once a worker runs, every order is fulfilled, each packed exactly once
        worker = stack.fulfillment_worker()
        wait_until(
            lambda: statuses_of(stack, accepted)["fulfilled"] == 20,
            timeout=120,
            what="20 fulfilled orders",
        )
        wait_until(
            lambda: worker.log().count("succeeded in") >= messages,
            what="the worker done with every message, the copies too",
        )
        refs = Counter(ref for ref in stack.warehouse_refs() if ref in accepted)
        assert refs == Counter(dict.fromkeys(accepted, 1))
