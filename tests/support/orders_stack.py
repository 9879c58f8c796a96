"""The new order path as real processes: warehouse, shop, orders (gunicorn + uvicorn
workers), the outbox relay, the orders-events worker and the fulfillment worker, each
service on a database of its own, all on one Redis with names of their own.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg

from tests.support.processes import (
    BackgroundProcess,
    RunningService,
    database_drop,
    database_recreate,
    database_url,
    free_port,
    gunicorn_service,
    manage,
)
from tests.support.stack import shop_process

ORDERS_SETTINGS = "orders_api.settings"
QUEUE_SETTINGS = "fulfillment_queue.settings"
WAREHOUSE_SETTINGS = "warehouse.settings"
MUSKIE = "muskie-casting-rod"
TOKEN = "demo-internal-token"


def wait_until(
    predicate: Callable[[], Any], *, timeout: float = 60, what: str = "condition"
) -> Any:
    """Poll until `predicate()` is truthy; fail with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@dataclass
class OrdersStack:
    tag: str
    env: dict[str, str]
    databases: dict[str, str]
    shop: RunningService
    orders: RunningService
    warehouse: BackgroundProcess
    warehouse_url: str
    relay: BackgroundProcess
    orders_worker: BackgroundProcess
    workers: list[BackgroundProcess] = field(default_factory=list)

    # --- processes -----------------------------------------------------------------

    def fulfillment_worker(self, **env: str) -> BackgroundProcess:
        """A fulfillment worker as the Procfile runs it; stopped with the stack."""
        worker_env = {**self.env, **env}
        concurrency = worker_env.get("FULFILLMENT_CONCURRENCY", "4")
        worker = BackgroundProcess(
            f"fulfillment-worker-{self.tag}",
            [
                sys.executable, "-m", "celery", "-A", "fulfillment_queue.celery_app",
                "worker", "-Q", self.env["FULFILLMENT_QUEUE"],
                "-n", f"fulfillment-{self.tag}-{len(self.workers)}@%h",
                "--concurrency", concurrency, "--prefetch-multiplier", "1",
                "--pool", "threads", "--without-gossip", "--without-mingle",
                "--without-heartbeat", "--loglevel", "INFO",
            ],
            env={**worker_env, "DJANGO_SETTINGS_MODULE": QUEUE_SETTINGS},
            ready_text="ready.",
        )  # fmt: skip
        self.workers.append(worker)
        return worker.start()

    # --- commands and data -----------------------------------------------------------

    def orders_manage(self, *args: str) -> str:
        return manage(ORDERS_SETTINGS, *args, env=self.env)

    def queue_manage(self, *args: str) -> str:
        return manage(QUEUE_SETTINGS, *args, env=self.env)

    def sql(self, service: str, query: str, params: Any = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(database_url(self.databases[service])) as conn:
            return conn.execute(query, params).fetchall()

    def order_statuses(self) -> Counter[str]:
        return Counter(
            dict(
                self.sql(
                    "orders", "SELECT status, count(*) FROM orders_api_order GROUP BY 1"
                )
            )
        )

    def warehouse_refs(self) -> list[str]:
        rows = self.sql("warehouse", "SELECT order_ref FROM warehouse_fulfillment")
        return [row[0] for row in rows]

    def warehouse_stats(self) -> dict[str, Any]:
        return httpx.get(self.warehouse_url + "/stats/", timeout=5).json()

    def shop_stock(self) -> int:
        rows = self.sql(
            "shop", "SELECT stock FROM shop_product WHERE sku = 'ROD-MUSKIE'"
        )
        return int(rows[0][0])

    def shop_stock_add(self, units: int) -> None:
        """Give the shop more Muskie rods, through its internal API."""
        response = httpx.post(
            self.shop.url + "/internal/stock/transfers/",
            json={
                "transfer_id": uuid.uuid4().hex,
                "sku": "ROD-MUSKIE",
                "units": -units,
            },
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert response.status_code == 201, response.text

    def sale_reopen(self, units: int) -> None:
        """Close any open sale, top the shop up, open a fresh sale of `units`."""
        with contextlib.suppress(RuntimeError):  # none open
            self.orders_manage("sale", "close", MUSKIE)
        if self.shop_stock() < units:
            self.shop_stock_add(units - self.shop_stock())
        self.orders_manage("sale", "open", MUSKIE, "--units", str(units))

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.orders.url, timeout=30)

    def logs(self) -> str:
        parts = [self.relay, self.orders_worker, *self.workers]
        return "\n".join(f"--- {p.name}\n{p.log()[-4000:]}" for p in parts)


def _python_manage(*args: str) -> list[str]:
    return [sys.executable, "manage.py", *args]


@contextmanager
def orders_stack(
    tag: str,
    *,
    redis_url: str | None = None,
    warehouse_capacity: int = 8,
    warehouse_handling_ms: int = 5,
    orders_workers: int = 2,
    env: Mapping[str, str] | None = None,
) -> Iterator[OrdersStack]:
    """Every process of the order path except the fulfillment worker (tests start it
    with the settings they need: `stack.fulfillment_worker(...)`)."""
    short = uuid.uuid4().hex[:6]
    tag = f"{tag}-{short}"
    databases = {
        name: f"st_{short}_{name}" for name in ("orders", "queue", "warehouse", "shop")
    }
    warehouse_port = free_port()
    warehouse_url = f"http://127.0.0.1:{warehouse_port}"
    common = {
        "REDIS_URL": redis_url
        or os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/6"),
        "ORDERS_DATABASE_URL": database_url(databases["orders"]),
        "FULFILLMENT_QUEUE_DATABASE_URL": database_url(databases["queue"]),
        "FULFILLMENT_DATABASE_URL": database_url(databases["warehouse"]),
        "WAREHOUSE_URL": warehouse_url,
        "WAREHOUSE_CAPACITY": str(warehouse_capacity),
        "WAREHOUSE_HANDLING_MS": str(warehouse_handling_ms),
        "ORDERS_REDIS_PREFIX": f"orders-{tag}",
        "ORDERS_CHANNELS_PREFIX": f"ch-{tag}",
        "FULFILLMENT_QUEUE": f"fulfillment-{tag}",
        "ORDERS_EVENTS_QUEUE": f"orders-events-{tag}",
        "ORDERS_RATE_LIMIT": "1000000",
        "ORDERS_RELAY_IDLE_SECONDS": "0.2",
        "FULFILLMENT_BACKOFF_SECONDS": "0.2",
        "FULFILLMENT_BACKOFF_MAX_SECONDS": "1.0",
        "DJANGO_DEBUG": "0",
        **(env or {}),
    }
    with ExitStack() as stack:
        for name in ("orders", "queue", "warehouse"):
            database_recreate(databases[name])
            stack.callback(database_drop, databases[name])
        manage(WAREHOUSE_SETTINGS, "migrate", "--no-input", "-v", "0", env=common)
        manage(ORDERS_SETTINGS, "migrate", "--no-input", "-v", "0", env=common)
        manage(QUEUE_SETTINGS, "migrate", "--no-input", "-v", "0", env=common)
        warehouse = BackgroundProcess(
            f"warehouse-{tag}",
            [
                sys.executable, "-m", "gunicorn", "warehouse.wsgi",
                "--bind", f"127.0.0.1:{warehouse_port}", "--workers", "1",
                "--threads", "32", "--worker-class", "gthread",
                "--graceful-timeout", "1",
            ],
            env={**common, "DJANGO_SETTINGS_MODULE": WAREHOUSE_SETTINGS},
            ready_url=warehouse_url + "/healthz",
        )  # fmt: skip
        stack.callback(warehouse.close)
        warehouse.start()
        shop = stack.enter_context(
            shop_process(databases["shop"], warehouse_url=warehouse_url, env=env)
        )
        common["SHOP_URL"] = shop.url
        orders_env = {**common, "DJANGO_SETTINGS_MODULE": ORDERS_SETTINGS}
        orders = stack.enter_context(
            gunicorn_service(
                f"orders-{tag}",
                "orders_api.asgi:application",
                settings_module=ORDERS_SETTINGS,
                env=common,
                workers=orders_workers,
                worker_class="uvicorn_worker.UvicornWorker",
                ready_path="/healthz",
            )
        )
        relay = BackgroundProcess(
            f"relay-{tag}",
            _python_manage("outbox_relay"),
            env=orders_env,
            ready_text="outbox relay running",
        )
        stack.callback(relay.close)
        relay.start()
        orders_worker = BackgroundProcess(
            f"orders-worker-{tag}",
            [
                sys.executable, "-m", "celery", "-A", "orders_api.celery_app",
                "worker", "-Q", common["ORDERS_EVENTS_QUEUE"],
                "-n", f"orders-{tag}@%h", "--concurrency", "2",
                "--prefetch-multiplier", "1", "--pool", "threads",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                "--loglevel", "INFO",
            ],
            env=orders_env,
            ready_text="ready.",
        )  # fmt: skip
        stack.callback(orders_worker.close)
        orders_worker.start()
        result = OrdersStack(
            tag=tag,
            env=common,
            databases={**databases},
            shop=shop,
            orders=orders,
            warehouse=warehouse,
            warehouse_url=warehouse_url,
            relay=relay,
            orders_worker=orders_worker,
        )
        for worker in result.workers:
            stack.callback(worker.close)
        yield result
