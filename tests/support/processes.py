"""Real processes for tests: a service under gunicorn on a free port, its own database.

Tests cross process boundaries where the behaviour does (shop → warehouse over HTTP);
these helpers start the real thing, never a mock.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dj_database_url
import httpx
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# Lets two checkouts run their suites at once on one server without sharing databases.
SUFFIX = os.environ.get("TEST_DATABASE_SUFFIX", "")


def traces_quiet_env(env: Mapping[str, str]) -> dict[str, str]:
    """Ours, then `env`; traced, but exporting nowhere unless `env` has a TRACES_DIR.

    Processes stay traced (the code path is the real one), yet test spans never land
    in the developer's store (.data/traces/).
    """
    quiet = {} if "TRACES_DIR" in env else {"OTEL_TRACES_EXPORTER": "none"}
    return {**os.environ, **quiet, **env}


def process_env(env: Mapping[str, str], settings_module: str) -> dict[str, str]:
    """A test process's environment: ours, then `env`, then its settings module."""
    return {**traces_quiet_env(env), "DJANGO_SETTINGS_MODULE": settings_module}


def scoped(name: str) -> str:
    """The name a test database really has on the server (with TEST_DATABASE_SUFFIX)."""
    return name if name == "postgres" else f"{name}{SUFFIX}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_url(name: str) -> str:
    """The URL of database `name` on the server that DATABASE_URL points at."""
    base = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    head, _, query = base.partition("?")
    head = head.rsplit("/", 1)[0]
    return f"{head}/{scoped(name)}" + (f"?{query}" if query else "")


def _admin_connect() -> psycopg.Connection:
    cfg = dj_database_url.parse(database_url("postgres"))
    # Other checkouts run their suites on the same server: when it is full for a
    # moment ("too many clients"), wait for a slot rather than fail a set-up.
    deadline = time.monotonic() + 30
    while True:
        try:
            return psycopg.connect(
                dbname="postgres",
                user=cfg.get("USER") or None,
                password=cfg.get("PASSWORD") or None,
                host=cfg.get("HOST") or (cfg.get("OPTIONS") or {}).get("host") or None,
                port=cfg.get("PORT") or None,
                autocommit=True,
            )
        except psycopg.OperationalError as error:
            if "too many clients" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def database_recreate(name: str) -> None:
    name = scoped(name)
    with _admin_connect() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)
            )
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def database_drop(name: str) -> None:
    name = scoped(name)
    with _admin_connect() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)
            )
        )


def manage(settings_module: str, *args: str, env: Mapping[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=process_env(env, settings_module),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"manage.py {' '.join(args)} failed ({settings_module}):\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result.stdout


@dataclass
class RunningService:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def served(
    name: str, cmd: list[str], *, port: int, env: Mapping[str, str], ready_path: str
) -> Iterator[RunningService]:
    """Run a server command until the block ends, once `ready_path` answers.

    Its output goes to a log file the failure messages quote; it is stopped with
    SIGTERM (SIGKILL after 10 s) whatever happens in the block.
    """
    log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in the finally below
        prefix=f"{name}-", suffix=".log", delete=False
    )
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=dict(env), stdout=log, stderr=subprocess.STDOUT
    )
    service = RunningService(name, port, proc, Path(log.name))
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited at start:\n{service.log()}")
            try:
                httpx.get(service.url + ready_path, timeout=1.0)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{name} did not start:\n{service.log()}"
                    ) from None
                time.sleep(0.1)
        yield service
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        os.unlink(log.name)


@contextmanager
def gunicorn_service(
    name: str,
    wsgi_app: str,
    *,
    settings_module: str,
    env: Mapping[str, str],
    workers: int = 1,
    threads: int = 8,
    ready_path: str = "/",
    port: int | None = None,
    extra_args: tuple[str, ...] = (),
    worker_class: str = "gthread",
) -> Iterator[RunningService]:
    """Run `wsgi_app` (or an ASGI app with an ASGI worker class) under gunicorn on a
    free port until the block ends."""
    port = port or free_port()
    cmd = [
        sys.executable, "-m", "gunicorn", wsgi_app,
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers), "--threads", str(threads),
        "--worker-class", worker_class, "--timeout", "30", "--no-control-socket",
        "--graceful-timeout", "2", *extra_args,
    ]  # fmt: skip
    with served(
        name,
        cmd,
        port=port,
        env=process_env(env, settings_module),
        ready_path=ready_path,
    ) as service:
        yield service


class BackgroundProcess:
    """A long-running command (a Celery worker, the relay) that tests can kill and
    start again. Its output goes to a log file; `ready_text` in it means started."""

    def __init__(
        self,
        name: str,
        cmd: list[str],
        *,
        env: Mapping[str, str],
        ready_text: str | None = None,
        ready_url: str | None = None,
    ) -> None:
        self.name = name
        self.ready_url = ready_url
        self.cmd = cmd
        self.env = traces_quiet_env(env)
        self.ready_text = ready_text
        self.process: subprocess.Popen[bytes] | None = None
        log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - removed in close()
            prefix=f"{name}-", suffix=".log", delete=False
        )
        log.close()
        self.log_path = Path(log.name)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def start(self, *, timeout: float = 60) -> BackgroundProcess:
        offset = self.log_path.stat().st_size
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                self.cmd, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while self.ready_text is not None:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log()}")
            with self.log_path.open("rb") as log:
                log.seek(offset)
                if self.ready_text.encode() in log.read():
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start:\n{self.log()}")
            time.sleep(0.1)
        while self.ready_url is not None:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log()}")
            try:
                httpx.get(self.ready_url, timeout=1.0)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{self.name} did not start:\n{self.log()}"
                    ) from None
                time.sleep(0.1)
        return self

    def kill(self) -> None:
        """SIGKILL: no goodbye, no cleanup, as when a machine dies."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def close(self) -> None:
        self.stop()
        self.log_path.unlink(missing_ok=True)


@contextmanager
def background(
    name: str,
    cmd: list[str],
    *,
    env: Mapping[str, str],
    ready_text: str | None = None,
    ready_url: str | None = None,
) -> Iterator[BackgroundProcess]:
    process = BackgroundProcess(
        name, cmd, env=env, ready_text=ready_text, ready_url=ready_url
    )
    try:
        yield process.start()
    finally:
        process.close()
