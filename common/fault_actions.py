"""The faults that are done once, when set (common/faults.py calls them).

- `redis.pause`: `CLIENT PAUSE <ms> ALL` on the stack's Redis: every client of that
  server (the queue, admission, channels, the edge's mode) waits, none is refused.
  It pauses the whole server, every database on it: give a stack a Redis of its own
  before pausing it where others work.
- `orders.db_terminate`: `pg_terminate_backend` of every connection to the orders
  service's database but this one; its processes meet a closed connection on their
  next query and must reconnect.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg

from common.env import service_database

if TYPE_CHECKING:
    from common.faults import FaultStore, FaultValue


def redis_pause(*, store: FaultStore, seconds: float) -> str:
    store.redis.execute_command("CLIENT", "PAUSE", int(seconds * 1000), "ALL")
    return f"Redis paused for {seconds:g}s"


def orders_database_conninfo() -> tuple[str, str]:
    """(conninfo, database name) of the orders service, as its settings find it."""
    config = service_database("orders")
    parts = {
        "dbname": config["NAME"],
        "host": config.get("HOST") or "",
        "port": str(config.get("PORT") or ""),
        "user": config.get("USER") or "",
        "password": config.get("PASSWORD") or "",
    }
    conninfo = " ".join(f"{k}='{v}'" for k, v in parts.items() if v)
    return conninfo, str(config["NAME"])


def orders_connections_terminate() -> str:
    conninfo, name = orders_database_conninfo()
    with psycopg.connect(conninfo, connect_timeout=5, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    done = sum(1 for (ok,) in rows if ok)
    return f"{done} connections to database {name} terminated"


def action_do(*, name: str, value: FaultValue, store: FaultStore) -> str:
    """Do action `name` now; what was done, in words."""
    if name == "redis.pause":
        return redis_pause(store=store, seconds=float(value))
    if name == "orders.db_terminate":
        return orders_connections_terminate()
    raise ValueError(f"{name} is not an action")  # pragma: no cover - FAULTS says
