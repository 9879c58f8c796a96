"""The operator's side of a sale run: every call the runner makes to the stack.

Over HTTP (health, the services' internal endpoints, the warehouse's stats), Redis
(the Celery queue's length) and `manage.py` in a subprocess (`sale open|close`,
`edge mode`). Never an import of a service's code.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis

from loadtest.config import MUSKIE_SKU, MUSKIE_SLUG, TOURNEY_SKU, Endpoints

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = httpx.Timeout(10.0, connect=2.0)
# The reconciliation's listings come right after a sale, from services that may still
# be working through its backlog (the legacy shop finishes buy requests the edge gave
# up on): they are given longer, and a timed-out page is asked for again.
LISTING_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
LISTING_TRIES = 3


class StackError(RuntimeError):
    """The stack did not do what the run needs (a reset, a mode, a listing)."""


@dataclass(frozen=True)
class CommandResult:
    code: int
    stdout: str
    stderr: str


def manage(*args: str, env: dict[str, str], timeout: float = 120) -> CommandResult:
    """`python manage.py ARGS` in a subprocess (each command picks its own settings)."""
    clean = {k: v for k, v in env.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return CommandResult(done.returncode, done.stdout, done.stderr)


# A strangler reset's sale open, refused because a late legacy purchase took stock
# after the reset: tries, and seconds between two.
OPEN_ATTEMPTS = 5
OPEN_RETRY_SECONDS = 2.0


class Stack:
    """One client per run; every method is one operation on the running stack."""

    def __init__(self, endpoints: Endpoints, env: dict[str, str]) -> None:
        self.endpoints = endpoints
        self.env = env
        self.http = httpx.Client(timeout=TIMEOUT)
        self.redis = redis.Redis.from_url(
            endpoints.redis_url, socket_timeout=2, socket_connect_timeout=2
        )
        self._auth = {"Authorization": f"Bearer {endpoints.internal_token}"}

    def close(self) -> None:
        self.http.close()
        self.redis.close()

    # --- health --------------------------------------------------------------------

    def answers(self) -> dict[str, bool]:
        checks = {
            "edge": self.endpoints.edge + "/_edge/healthz",
            "shop": self.endpoints.shop + "/shop/",
            "orders": self.endpoints.orders + "/healthz",
            "warehouse": self.endpoints.warehouse + "/healthz",
        }
        return {name: self._ok(url) for name, url in checks.items()}

    def _ok(self, url: str) -> bool:
        try:
            return self.http.get(url, timeout=3.0).status_code == 200
        except httpx.HTTPError:
            return False

    # --- reset ---------------------------------------------------------------------

    def sale_close(self) -> str:
        """Close the Muskie sale if one is open (unsold units go back to the shop)."""
        result = manage("sale", "close", MUSKIE_SLUG, env=self.env)
        if result.code != 0:
            if "not_open" in result.stderr + result.stdout:
                return "Muskie Casting Rod: no sale open, nothing to close"
            raise StackError(f"sale close failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def sale_open(self, units: int) -> str:
        result = manage(
            "sale", "open", MUSKIE_SLUG, "--units", str(units), env=self.env
        )
        if result.code != 0:
            raise StackError(f"sale open failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def stock_set(self, sku: str, stock: int, *, run_tag: str) -> dict[str, Any]:
        """The shop's stock of `sku` := `stock`, as a ledgered transfer."""
        response = self.http.post(
            self.endpoints.shop + "/internal/stock/levels/",
            json={
                "transfer_id": f"loadtest-{run_tag}-{sku}-{uuid.uuid4().hex[:8]}",
                "sku": sku,
                "stock": stock,
            },
            headers=self._auth,
        )
        if response.status_code not in (200, 201):
            raise StackError(
                f"stock reset of {sku} refused: {response.status_code} {response.text}"
            )
        return dict(response.json())

    def warehouse_reset(self) -> dict[str, Any]:
        response = self.http.post(
            self.endpoints.warehouse + "/stats/reset", headers=self._auth
        )
        response.raise_for_status()
        return dict(response.json())

    def reset(self, *, mode: str, units: int, run_tag: str) -> list[str]:
        """Both modes start alike: `units` Muskie rods on sale, a new warehouse window.

        legacy: no sale in the orders service, the shop holds the `units`.
        strangler: the shop holds them, then `sale open` takes them all.
        """
        notes = [self.sale_close()]
        self.stock_set(TOURNEY_SKU, 100_000, run_tag=run_tag)
        for attempt in range(1, OPEN_ATTEMPTS + 1):
            self.stock_set(MUSKIE_SKU, units, run_tag=run_tag)
            if mode != "strangler":
                break
            try:
                notes.append(self.sale_open(units))
                break
            except StackError as error:
                if "shop_refused" not in str(error) or attempt == OPEN_ATTEMPTS:
                    raise
                # A legacy purchase whose buyer gave up (a 504 at the edge) still
                # waits for the row lock in the shop and may commit after the stock
                # was set: set it again once the shop has caught up.
                notes.append(f"the shop sold after the reset ({attempt}): set again")
                time.sleep(OPEN_RETRY_SECONDS)
        self.warehouse_reset()
        return [n for n in notes if n]

    # --- the edge ------------------------------------------------------------------

    def edge_engine(self) -> str:
        """The engine the edge says it runs (an edge from before engines: python)."""
        return self.edge_seen()["engine"]

    def edge_seen(self) -> dict[str, str]:
        """What answered the edge's public port: the engine and mode its health
        check names (under nginx, nginx's worker answers it itself) and the
        answer's `Server` header."""
        health = self.http.get(self.endpoints.edge + "/_edge/healthz", timeout=3.0)
        body = health.json()
        return {
            "engine": str(body.get("engine", "python")),
            "mode": str(body.get("mode", "")),
            "server": health.headers.get("server", ""),
        }

    def edge_mode(self, mode: str, *, timeout: float = 15.0) -> None:
        """`manage.py edge mode MODE`, then wait until every edge worker follows it."""
        result = manage("edge", "mode", mode, env=self.env)
        if result.code != 0:
            raise StackError(f"edge mode {mode} failed: {result.stderr.strip()}")
        deadline = time.monotonic() + timeout
        following: set[int] = set()
        while len(following) < self.endpoints.edge_workers:
            try:
                # A new connection each time: it may land on another worker.
                health = httpx.get(self.endpoints.edge + "/_edge/healthz", timeout=2)
                body = health.json()
                if body.get("mode") == mode:
                    following.add(int(body.get("worker", 0)))
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise StackError(f"the edge's workers did not all follow {mode}")
            time.sleep(0.05)

    # --- what the run watches ------------------------------------------------------

    def warehouse_stats(self) -> dict[str, Any]:
        return dict(self.http.get(self.endpoints.warehouse + "/stats/").json())

    def queue_depth(self) -> int:
        """Messages waiting in the Celery queue `fulfillment` (a Redis list)."""
        return int(self.redis.llen(self.endpoints.fulfillment_queue))

    def sale_board(self) -> dict[str, Any] | None:
        response = self.http.get(self.endpoints.orders + f"/api/sales/{MUSKIE_SLUG}/")
        return dict(response.json()) if response.status_code == 200 else None

    # --- what the reconciliation reads ---------------------------------------------

    def fulfilments_since(self, since: str) -> list[dict[str, Any]]:
        return self._pages(
            self.endpoints.warehouse + "/fulfilments/", {"since": since}, "fulfilments"
        )

    def shop_orders_since(self, sku: str, since: str) -> list[dict[str, Any]]:
        return self._pages(
            self.endpoints.shop + "/internal/orders/",
            {"sku": sku, "since": since},
            "orders",
        )

    def _pages(
        self, url: str, params: dict[str, str], key: str
    ) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        after: int | None = 0
        while after is not None:
            response = self._listing_get(
                url, {**params, "after": str(after), "limit": "5000"}
            )
            if response.status_code != 200:
                raise StackError(f"{url}: {response.status_code} {response.text}")
            body = response.json()
            rows.extend(body[key])
            after = body["next_after"]
        return rows

    def _listing_get(self, url: str, params: dict[str, str]) -> httpx.Response:
        def get() -> httpx.Response:
            return self.http.get(
                url, params=params, headers=self._auth, timeout=LISTING_TIMEOUT
            )

        for _ in range(LISTING_TRIES - 1):
            with contextlib.suppress(httpx.TimeoutException):
                return get()
        try:
            return get()
        except httpx.TimeoutException:
            raise StackError(f"{url}: no answer in {LISTING_TRIES} tries") from None

    def sale_orders(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The current Muskie sale (allocation) and all its orders."""
        url = self.endpoints.orders + f"/internal/sales/{MUSKIE_SLUG}/orders/"
        orders: list[dict[str, Any]] = []
        offset: int | None = 0
        sale: dict[str, Any] = {}
        while offset is not None:
            response = self._listing_get(url, {"offset": str(offset), "limit": "5000"})
            if response.status_code != 200:
                raise StackError(f"{url}: {response.status_code} {response.text}")
            body = response.json()
            sale = body["sale"]
            orders.extend(body["orders"])
            offset = body["next_offset"]
        return sale, orders
