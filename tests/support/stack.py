"""The demo's services as real processes for tests, each with a database of its own."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import psycopg

from tests.support.processes import (
    RunningService,
    database_drop,
    database_recreate,
    database_url,
    gunicorn_service,
    manage,
)

WAREHOUSE_SETTINGS = "warehouse.settings"
SHOP_SETTINGS = "shop.settings"


@contextmanager
def warehouse_process(
    db_name: str,
    *,
    capacity: int = 8,
    handling_ms: int = 50,
    threads: int = 32,
    migrate: bool = True,
    env: Mapping[str, str] | None = None,
) -> Iterator[RunningService]:
    """A warehouse under gunicorn, as the Procfile runs it, on a fresh database.

    `migrate=False` starts it with no database at all (to see it report unhealthy).
    `env` adds to its environment (e.g. TRACES_DIR and OTEL_* for the trace tests).
    """
    env = {
        "FULFILLMENT_DATABASE_URL": database_url(db_name),
        "WAREHOUSE_CAPACITY": str(capacity),
        "WAREHOUSE_HANDLING_MS": str(handling_ms),
        **(env or {}),
    }
    if migrate:
        database_recreate(db_name)
    else:
        database_drop(db_name)
    try:
        if migrate:
            manage(WAREHOUSE_SETTINGS, "migrate", "--no-input", "-v", "0", env=env)
        with gunicorn_service(
            f"warehouse-{db_name}",
            "warehouse.wsgi",
            settings_module=WAREHOUSE_SETTINGS,
            env=env,
            threads=threads,
            ready_path="/healthz",
        ) as service:
            yield service
    finally:
        database_drop(db_name)


@contextmanager
def shop_process(
    db_name: str, *, warehouse_url: str, env: Mapping[str, str] | None = None
) -> Iterator[RunningService]:
    """The legacy shop under gunicorn on a fresh, seeded database."""
    database_recreate(db_name)
    shop_env = {
        "SHOP_DATABASE_URL": database_url(db_name),
        "WAREHOUSE_URL": warehouse_url,
        **(env or {}),
    }
    try:
        manage(SHOP_SETTINGS, "migrate", "--no-input", env=shop_env)
        manage(SHOP_SETTINGS, "seed_catalogue", env=shop_env)
        with gunicorn_service(
            "shop",
            "shop.wsgi",
            settings_module=SHOP_SETTINGS,
            env=shop_env,
            workers=2,
            threads=8,
            ready_path="/shop/",
        ) as service:
            yield service
    finally:
        database_drop(db_name)


def fulfillment_refs(db_name: str) -> list[str]:
    """The order refs the warehouse has fulfilled, read from its own database."""
    with psycopg.connect(database_url(db_name)) as conn:
        rows = conn.execute("SELECT order_ref FROM warehouse_fulfillment").fetchall()
    return [row[0] for row in rows]
