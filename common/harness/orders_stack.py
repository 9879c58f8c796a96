"""The new order path as real processes: warehouse, shop, orders (gunicorn + uvicorn
workers), the outbox relay, the orders-events worker and the fulfillment workers,
each the Procfile's own line, each service on a database of its own, all on one
Redis with names (queues, key prefixes) of their own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg

from common.faults import FaultStore, fault_store
from common.harness.databases import database_drop, database_recreate, database_url
from common.harness.processes import Process, free_port
from common.harness.services import (
    INTERNAL_TOKEN,
    ORDERS_SETTINGS,
    QUEUE_SETTINGS,
    WAREHOUSE_SETTINGS,
    manage,
    procfile_process,
    shop_process,
)
from common.harness.supervisor import Supervisor
from common.stack_secrets import secrets_for_processes

MUSKIE = "muskie-casting-rod"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/6"


@dataclass
class OrdersStack:
    tag: str
    env: dict[str, str]
    databases: dict[str, str]
    shop: Process
    orders: Process
    warehouse: Process
    warehouse_url: str
    relay: Process
    orders_worker: Process
    workers: list[Process] = field(default_factory=list)

    def fulfillment_worker(self, **env: str) -> Process:
        """A fulfillment worker, the Procfile's line with `env` on top of the
        stack's (FULFILLMENT_CONCURRENCY=1, ...); stopped with the stack."""
        worker = procfile_process(
            "fulfillment-worker",
            env={**self.env, **env},
            tag=f"{self.tag}-{len(self.workers)}",
        )
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
        query = "SELECT status, count(*) FROM orders_api_order GROUP BY 1"
        return Counter(dict(self.sql("orders", query)))

    def warehouse_refs(self) -> list[str]:
        rows = self.sql("warehouse", "SELECT order_ref FROM warehouse_fulfillment")
        return [row[0] for row in rows]

    def warehouse_reset(self) -> None:
        """A new measuring window at the warehouse (a write: it takes the token)."""
        response = httpx.post(
            self.warehouse_url + "/stats/reset",
            headers={"Authorization": f"Bearer {INTERNAL_TOKEN}"},
            timeout=5,
        )
        assert response.status_code == 200, response.text

    def warehouse_stats(self) -> dict[str, Any]:
        return httpx.get(self.warehouse_url + "/stats/", timeout=5).json()

    def shop_stock(self) -> int:
        query = "SELECT stock FROM shop_product WHERE sku = 'ROD-MUSKIE'"
        return int(self.sql("shop", query)[0][0])

    def shop_stock_add(self, units: int) -> None:
        """Give the shop more Muskie rods, through its internal API."""
        response = httpx.post(
            self.shop.url + "/internal/stock/transfers/",
            json={
                "transfer_id": uuid.uuid4().hex,
                "sku": "ROD-MUSKIE",
                "units": -units,
            },
            headers={"Authorization": f"Bearer {self.env['INTERNAL_API_TOKEN']}"},
        )
        assert response.status_code == 201, response.text

    def sale_reopen(self, units: int) -> None:
        """Close any open sale, top the shop up, open a fresh sale of `units`."""
        with contextlib.suppress(RuntimeError):  # none open
            self.orders_manage("sale", "close", MUSKIE)
        if self.shop_stock() < units:
            self.shop_stock_add(units - self.shop_stock())
        self.orders_manage("sale", "open", MUSKIE, "--units", str(units))

    def fault_store(self) -> FaultStore:
        """This stack's faults (its Redis, its key prefix): what `faults` sets."""
        return fault_store(self.env["REDIS_URL"], prefix=self.env["FAULTS_KEY_PREFIX"])

    def supervisor(self, **options: Any) -> Supervisor:
        """A supervisor (not started) of the relay and the workers, by their
        Procfile names, taking this stack's kill requests (`faults kill`)."""
        processes = {"relay": self.relay, "orders-worker": self.orders_worker}
        if self.workers:
            processes["fulfillment-worker"] = self.workers[-1]
        return Supervisor(processes, store=self.fault_store(), **options)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.orders.url, timeout=30)

    def logs(self) -> str:
        parts = [self.relay, self.orders_worker, *self.workers]
        return "\n".join(f"--- {p.name}\n{p.log()[-4000:]}" for p in parts)


def _stack_env(
    tag: str,
    databases: dict[str, str],
    *,
    redis_url: str | None,
    warehouse_url: str,
    warehouse_capacity: int,
    warehouse_handling_ms: int,
) -> dict[str, str]:
    return {
        # Every process of the stack (and the test's own calls) with the same ones.
        **secrets_for_processes(),
        "REDIS_URL": redis_url or os.environ.get("REDIS_URL", DEFAULT_REDIS_URL),
        "ORDERS_DATABASE_URL": database_url(databases["orders"]),
        "FULFILLMENT_QUEUE_DATABASE_URL": database_url(databases["queue"]),
        "FULFILLMENT_DATABASE_URL": database_url(databases["warehouse"]),
        "WAREHOUSE_URL": warehouse_url,
        "INTERNAL_API_TOKEN": INTERNAL_TOKEN,
        "WAREHOUSE_CAPACITY": str(warehouse_capacity),
        "WAREHOUSE_HANDLING_MS": str(warehouse_handling_ms),
        "ORDERS_REDIS_PREFIX": f"orders-{tag}",
        "FAULTS_KEY_PREFIX": f"faults-{tag}",
        "ORDERS_CHANNELS_PREFIX": f"ch-{tag}",
        "FULFILLMENT_QUEUE": f"fulfillment-{tag}",
        "ORDERS_EVENTS_QUEUE": f"orders-events-{tag}",
        "ORDERS_RATE_LIMIT": "1000000",
        "ORDERS_RELAY_IDLE_SECONDS": "0.2",
        "FULFILLMENT_BACKOFF_SECONDS": "0.2",
        "FULFILLMENT_BACKOFF_MAX_SECONDS": "1.0",
        "DJANGO_DEBUG": "0",
    }


def _close_all(processes: list[Process]) -> None:
    for process in processes:
        process.close()


def _started(stack: ExitStack, process: Process) -> Process:
    stack.callback(process.close)
    return process.start()


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
    """Every process of the order path except the fulfillment worker (callers start
    it with the settings they need: `stack.fulfillment_worker(...)`)."""
    short = uuid.uuid4().hex[:6]
    tag = f"{tag}-{short}"
    names = ("orders", "queue", "warehouse", "shop")
    databases = {name: f"st_{short}_{name}" for name in names}
    warehouse_port = free_port()
    warehouse_url = f"http://127.0.0.1:{warehouse_port}"
    common = _stack_env(
        tag,
        databases,
        redis_url=redis_url,
        warehouse_url=warehouse_url,
        warehouse_capacity=warehouse_capacity,
        warehouse_handling_ms=warehouse_handling_ms,
    )
    # The sale's minisite (`sale open` builds it), for an edge in front of the stack:
    # a directory of its own, readable by nginx's workers too.
    site_dir = tempfile.mkdtemp(prefix=f"site-{short}-")
    os.chmod(site_dir, 0o755)  # noqa: S103 - public files, by design
    common |= {
        "ORDERS_WORKERS": str(orders_workers),
        "SALE_SITE_DIR": site_dir,
        **(env or {}),
    }
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, site_dir, True)
        for name in ("orders", "queue", "warehouse"):
            database_recreate(databases[name])
            stack.callback(database_drop, databases[name])
        for settings in (WAREHOUSE_SETTINGS, ORDERS_SETTINGS, QUEUE_SETTINGS):
            manage(settings, "migrate", "--no-input", "-v", "0", env=common)
        warehouse = procfile_process(
            "warehouse", env=common, port=warehouse_port, tag=tag
        )
        _started(stack, warehouse)
        shop = stack.enter_context(
            shop_process(databases["shop"], warehouse_url=warehouse_url, env=env)
        )
        common["SHOP_URL"] = shop.url
        result = OrdersStack(
            tag=tag,
            env=common,
            databases=databases,
            shop=shop,
            orders=_started(stack, procfile_process("orders", env=common, tag=tag)),
            warehouse=warehouse,
            warehouse_url=warehouse_url,
            relay=_started(stack, procfile_process("relay", env=common, tag=tag)),
            orders_worker=_started(
                stack, procfile_process("orders-worker", env=common, tag=tag)
            ),
        )
        # A dead letter's replay (queue_manage) asks this orders service first.
        common["ORDERS_URL"] = result.orders.url
        # The list itself: workers started later are closed too.
        stack.callback(_close_all, result.workers)
        yield result
