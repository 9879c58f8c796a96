"""Starting the floor (bench/floor.py) as the Procfile starts the orders service:
its `orders:` line, the application swapped for the floor's."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from common.harness.processes import Process, free_port, venv_environ
from common.harness.procfile import procfile_argv
from common.harness.services import ORDERS_SETTINGS, service_env

ORDERS_APP = "orders_api.asgi:application"
FLOOR_APP = "bench.floor:application"

# bench/floor.py's tables (it is imported by the floor's own process only).
TABLES_SQL = """
CREATE TABLE IF NOT EXISTS bench_floor_order (
    id uuid PRIMARY KEY, email text NOT NULL, quantity int NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS bench_floor_event (
    id uuid PRIMARY KEY, order_id uuid NOT NULL, data jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now());
"""


def floor_argv(env: Mapping[str, str]) -> list[str]:
    """The Procfile's orders command with the floor's application in its place."""
    argv = procfile_argv("orders", venv_environ(env))
    if ORDERS_APP not in argv:
        raise RuntimeError(f"the Procfile's orders line no longer names {ORDERS_APP}")
    return [FLOOR_APP if word == ORDERS_APP else word for word in argv]


@contextmanager
def floor_started(env: Mapping[str, str]) -> Iterator[Process]:
    own = {**service_env(env), "DJANGO_SETTINGS_MODULE": ORDERS_SETTINGS}
    port = free_port()
    own["ORDERS_PORT"] = str(port)
    process = Process(
        "floor",
        floor_argv(own),
        env=own,
        port=port,
        ready_url=f"http://127.0.0.1:{port}/floor/",
    )
    with process:
        yield process
