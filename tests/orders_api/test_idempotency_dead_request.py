"""A request killed mid-order (SIGKILL of the orders service) leaves its
Idempotency-Key claimed: the retry is 409 until the claim's lease runs out, then it
takes the key over and orders exactly once. Real processes, real row locks."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from typing import Any

import httpx
import psycopg
import pytest
import redis

from common.harness.databases import database_url
from common.harness.services import procfile_process
from tests.support.orders_stack import OrdersStack, orders_stack, wait_until

pytestmark = pytest.mark.stack

MUSKIE = "muskie-casting-rod"
BODY = {"sku": "ROD-MUSKIE", "quantity": 1, "email": "angler@example.com"}


def order_inserts(stack: OrdersStack, *, waiting: bool = False) -> int:
    """Backends of the orders database whose last statement inserts an order
    (waiting=True: those waiting on a lock to do it)."""
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        # (anywhere in the statement: the lean accept's one INSERT of three begins
        # WITH; and not this query, whose text holds the pattern)
        """AND query LIKE '%%INSERT INTO "orders_api_order"%%' """
        "AND pid <> pg_backend_pid() "
        + ("AND wait_event_type = 'Lock'" if waiting else "")
    )
    return int(stack.sql("orders", query)[0][0])


def claims(stack: OrdersStack) -> list[tuple[Any, ...]]:
    return stack.sql("orders", "SELECT status FROM orders_api_idempotencykey")


def lease_runs_out(stack: OrdersStack) -> None:
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    try:
        held = list(client.scan_iter(f"{stack.env['ORDERS_REDIS_PREFIX']}:idem:*"))
        assert held, "no claim held in Redis"
        for name in held:
            client.pexpire(name, 1)
    finally:
        client.close()
    time.sleep(0.05)


def orders(stack: OrdersStack) -> int:
    return int(stack.sql("orders", "SELECT count(*) FROM orders_api_order")[0][0])


def send_and_forget(url: str, headers: dict[str, str]) -> threading.Thread:
    """POST in the background; its answer never comes (the server is killed)."""

    def send() -> None:
        # The connection dies with the server: what is being tested.
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(url + "/api/orders/", json=BODY, headers=headers, timeout=60)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def test_a_request_killed_mid_order_is_taken_over_after_its_lease_and_orders_once() -> (
    None
):
    with orders_stack("lease", orders_workers=1) as stack:
        stack.sale_reopen(5)
        headers = {
            "Idempotency-Key": str(uuid.uuid4()),
            "Orders-Client-Secret": str(uuid.uuid4()),
        }
        # Given the orders table locked against writes, so an order's INSERT waits
        with psycopg.connect(database_url(stack.databases["orders"])) as lock:
            lock.execute("LOCK TABLE orders_api_order IN SHARE MODE")
            # and a request that claimed its key and is inserting its order
            request = send_and_forget(stack.orders.url, headers)
            wait_until(
                lambda: order_inserts(stack, waiting=True) == 1,
                what="the request claimed (in Redis) and blocked on its INSERT",
            )
            # When the orders service is killed under it
            stack.orders.kill()
            request.join(30)
        # its transaction dies with its connection (never committed) once the
        # lock goes
        wait_until(lambda: order_inserts(stack) == 0, what="its backend gone")
        assert orders(stack) == 0
        restarted = procfile_process("orders", env=stack.env, tag=f"{stack.tag}-2")
        try:
            restarted.start()
            with httpx.Client(base_url=restarted.url, timeout=30) as client:
                retry_after_restart(stack, client, headers)
        finally:
            restarted.close()


def retry_after_restart(
    stack: OrdersStack, client: httpx.Client, headers: dict[str, str]
) -> None:
    # Then a retry within the lease is told to come back
    early = client.post("/api/orders/", json=BODY, headers=headers)
    assert early.status_code == 409, early.text
    assert early.json()["error"] == "idempotency_in_progress"
    assert int(early.headers["Retry-After"]) >= 1
    assert orders(stack) == 0

    # and once the lease ran out (30 s later, here moved back: the lean accept
    # leases its claim in Redis), the retry orders
    lease_runs_out(stack)
    retry = client.post("/api/orders/", json=BODY, headers=headers)
    assert retry.status_code == 202, retry.text
    again = client.post("/api/orders/", json=BODY, headers=headers)
    assert again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == retry.json()
    # exactly one order, and its token (derived again on the replay) opens it
    assert orders(stack) == 1
    assert client.get(again.json()["status_url"]).status_code == 200
    assert claims(stack) == [("completed",)]
