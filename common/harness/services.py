"""The stack's services as the Procfile runs them, for tests and benchmarks.

`procfile_process("warehouse", env=...)` is the Procfile's own `warehouse:` line,
its variables (ports, workers, threads, queues) taken from `env`: what runs under
test is what `make demo` runs. `warehouse_process` and `shop_process` add a fresh
database of their own.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from common.harness.databases import database_drop, database_recreate, database_url
from common.harness.processes import Process, free_port, venv_environ
from common.harness.procfile import ROOT, procfile_argv
from common.stack_secrets import secrets_for_processes

SHOP_SETTINGS = "shop.settings"
WAREHOUSE_SETTINGS = "warehouse.settings"
ORDERS_SETTINGS = "orders_api.settings"
QUEUE_SETTINGS = "fulfillment_queue.settings"

# The internal token of every process started here (INTERNAL_API_TOKEN): the run's
# own (random unless the environment gives one), never the demo's, so a caller that
# sends none, or falls back to a default instead of reading it, fails under test.
INTERNAL_TOKEN = secrets_for_processes()["INTERNAL_API_TOKEN"]


@dataclass(frozen=True)
class ProcfileService:
    """How to run and wait for one Procfile process."""

    settings: str | None = None
    port_variable: str | None = None
    ready_path: str | None = None
    ready_text: str | None = None
    # More ports it listens on, each a free one unless the caller's env gives it.
    other_ports: tuple[str, ...] = ()


SERVICES: dict[str, ProcfileService] = {
    "shop": ProcfileService(SHOP_SETTINGS, "SHOP_PORT", "/shop/"),
    "warehouse": ProcfileService(WAREHOUSE_SETTINGS, "WAREHOUSE_PORT", "/healthz"),
    "orders": ProcfileService(ORDERS_SETTINGS, "ORDERS_PORT", "/healthz"),
    # Plain ASGI: whatever settings module the caller has does not matter to it.
    "edge": ProcfileService(
        None, "EDGE_PORT", "/_edge/healthz", other_ports=("EDGE_ADMIN_PORT",)
    ),
    "relay": ProcfileService(ORDERS_SETTINGS, ready_text="outbox relay running"),
    "orders-worker": ProcfileService(ORDERS_SETTINGS, ready_text="ready."),
    "fulfillment-worker": ProcfileService(QUEUE_SETTINGS, ready_text="ready."),
}


def traces_quiet_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env`, traced but exporting nowhere unless it names a TRACES_DIR.

    The processes stay traced (the code path is the real one), yet their spans never
    land in the developer's store (.data/traces/).
    """
    quiet = {} if "TRACES_DIR" in env else {"OTEL_TRACES_EXPORTER": "none"}
    return {**quiet, **env}


def service_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env` (traces quiet) over the stack's secrets: the environment's, else ones
    made once per harness, so the services it starts agree with one another."""
    return {**secrets_for_processes(), **traces_quiet_env(env)}


def procfile_process(
    name: str, *, env: Mapping[str, str], port: int | None = None, tag: str = ""
) -> Process:
    """Process `name` of the Procfile (not started), on `port` or a free one."""
    service = SERVICES[name]
    own = service_env(env)
    if service.settings:
        own["DJANGO_SETTINGS_MODULE"] = service.settings
    if service.port_variable:
        port = port or free_port()
        own[service.port_variable] = str(port)
    # Each apart from the others: two free_port() calls may return the same port.
    taken = {str(port)}
    for variable in service.other_ports:
        while own.get(variable, str(port)) in taken:
            own[variable] = str(free_port())
        taken.add(own[variable])
    ready_url = None
    if service.ready_path:
        ready_url = f"http://127.0.0.1:{port}{service.ready_path}"
    # With LOGS_DIR, its output is kept in `<LOGS_DIR>/<name>.log`, where `make
    # demo` keeps it under .data/logs/ (common/harness/process_logs.py).
    logs = own.get("LOGS_DIR")
    return Process(
        f"{name}-{tag}" if tag else name,
        procfile_argv(name, venv_environ(own)),
        env=own,
        port=port,
        ready_url=ready_url,
        ready_text=service.ready_text,
        log_path=Path(logs) / f"{name}.log" if logs else None,
    )


def demo_process(
    *,
    env: Mapping[str, str],
    ready: Callable[[], bool],
    log_path: Path,
    grace: float,
    poll_seconds: float,
) -> Process:
    """`make demo`'s launcher (`python -m common.devstack demo`), not started:
    stopped as Ctrl-C stops it, one SIGINT to its group, so that honcho stops every
    process and the launcher its embedded servers."""
    return Process(
        "the demo stack",
        [sys.executable, "-m", "common.devstack", "demo"],
        env=env,
        ready=ready,
        log_path=log_path,
        stop_signal=signal.SIGINT,
        grace=grace,
        poll_seconds=poll_seconds,
    )


def manage(settings_module: str, *args: str, env: Mapping[str, str]) -> str:
    """`manage.py ARGS` under `settings_module`, to completion; its output."""
    result = subprocess.run(  # noqa: S603 - manage.py of this checkout
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=venv_environ(
            {**service_env(env), "DJANGO_SETTINGS_MODULE": settings_module}
        ),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"manage.py {' '.join(args)} failed ({settings_module}):\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result.stdout


@contextmanager
def warehouse_process(
    db_name: str,
    *,
    capacity: int = 8,
    handling_ms: int = 200,
    threads: int = 32,
    migrate: bool = True,
    env: Mapping[str, str] | None = None,
) -> Iterator[Process]:
    """The Procfile's warehouse on a fresh database (`migrate=False`: none at all,
    to see it report unhealthy). `env` adds to its environment."""
    env = {
        "FULFILLMENT_DATABASE_URL": database_url(db_name),
        "WAREHOUSE_CAPACITY": str(capacity),
        "WAREHOUSE_HANDLING_MS": str(handling_ms),
        "WAREHOUSE_THREADS": str(threads),
        "INTERNAL_API_TOKEN": INTERNAL_TOKEN,
        **(env or {}),
    }
    database_recreate(db_name) if migrate else database_drop(db_name)
    try:
        if migrate:
            manage(WAREHOUSE_SETTINGS, "migrate", "--no-input", "-v", "0", env=env)
        with procfile_process("warehouse", env=env, tag=db_name) as service:
            yield service
    finally:
        database_drop(db_name)


@contextmanager
def shop_process(
    db_name: str, *, warehouse_url: str, env: Mapping[str, str] | None = None
) -> Iterator[Process]:
    """The Procfile's shop on a fresh, seeded database."""
    database_recreate(db_name)
    shop_env = {
        "SHOP_DATABASE_URL": database_url(db_name),
        "WAREHOUSE_URL": warehouse_url,
        "INTERNAL_API_TOKEN": INTERNAL_TOKEN,
        **(env or {}),
    }
    try:
        manage(SHOP_SETTINGS, "migrate", "--no-input", env=shop_env)
        manage(SHOP_SETTINGS, "seed_catalogue", env=shop_env)
        with procfile_process("shop", env=shop_env, tag=db_name) as service:
            yield service
    finally:
        database_drop(db_name)
