"""The edge router and its test origins as real processes on free ports.

`edge_process` runs `uvicorn edge_router.app:app` as the Procfile does (uvloop,
httptools, 2 workers), each with its own Redis key for the mode, so concurrent test
runs and tests never see each other's mode. `nginx_process` runs Debian's nginx with a
config written by `python manage.py edge export nginx`.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from tests.support.processes import free_port, served

ADMIN_TOKEN = "test-admin-token"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/5"


@dataclass
class Process:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def _running(
    name: str, cmd: list[str], port: int, env: Mapping[str, str], ready_path: str
) -> Iterator[Process]:
    with served(
        name, cmd, port=port, env={**os.environ, **env}, ready_path=ready_path
    ) as service:
        yield Process(name, port, service.process, service.log_path, dict(env))


@contextmanager
def origin_process(
    name: str, *, reset_port: int = 0, stale_port: int = 0, keep_alive: float = 30.0
) -> Iterator[Process]:
    """tests/edge/origin_app.py: echoes, streams, stalls, resets, websockets."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "tests.edge.origin_app",
        "--name",
        name,
        "--port",
        str(port),
    ]
    if reset_port:
        cmd += ["--reset-port", str(reset_port)]
    if stale_port:
        cmd += ["--stale-port", str(stale_port)]
    cmd += ["--keep-alive", str(keep_alive)]
    with _running(f"origin-{name}", cmd, port, {}, "/__origin/inflight") as service:
        yield service


def edge_command(port: int, *, workers: int = 2) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", "edge_router.app:app",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--loop", "uvloop", "--http", "httptools", "--lifespan", "on",
        "--no-access-log", "--no-proxy-headers", "--timeout-graceful-shutdown", "5",
    ]  # fmt: skip


def edge_env(shop_url: str, orders_url: str, **extra: str) -> dict[str, str]:
    """The edge's environment. It is traced, as it runs for real, but exports its
    spans only when given a TRACES_DIR (tests.support.tracing.traced_env)."""
    quiet = {} if "TRACES_DIR" in extra else {"OTEL_TRACES_EXPORTER": "none"}
    return {
        **quiet,
        "SHOP_URL": shop_url,
        "ORDERS_URL": orders_url,
        "REDIS_URL": os.environ.get("REDIS_URL", DEFAULT_REDIS_URL),
        "EDGE_MODE_KEY": f"edge:test:{uuid.uuid4().hex}:mode",
        "EDGE_ADMIN_TOKEN": ADMIN_TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="edge-metrics-"),
        **extra,
    }


@contextmanager
def edge_process(
    shop_url: str, orders_url: str, *, workers: int = 2, **extra: str
) -> Iterator[Process]:
    port = free_port()
    env = edge_env(shop_url, orders_url, **extra)
    try:
        with _running(
            "edge", edge_command(port, workers=workers), port, env, "/_edge/healthz"
        ) as edge:
            yield edge
    finally:
        shutil.rmtree(env["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
        key = env["EDGE_MODE_KEY"]
        redis.Redis.from_url(env["REDIS_URL"]).delete(key, key + ":version")


def set_mode(edge: Process, mode: str, percent: int | None = None) -> int:
    """Switch the edge's mode and wait until every worker says it follows it."""
    body: dict[str, object] = {"mode": mode}
    if percent is not None:
        body["percent"] = percent
    answer = httpx.post(
        edge.url + "/_edge/mode",
        json=body,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=5,
    )
    answer.raise_for_status()
    version = int(answer.json()["version"])
    wait_for_version(edge, version)
    return version


def wait_for_version(edge: Process, version: int, workers: int = 2) -> None:
    """Poll /_edge/healthz (new connections) until `workers` pids report `version`."""
    following: set[int] = set()
    deadline = time.monotonic() + 10
    while len(following) < workers:
        health = httpx.get(edge.url + "/_edge/healthz", timeout=2).json()
        if health["version"] >= version:
            following.add(health["worker"])
        if time.monotonic() > deadline:
            raise AssertionError(f"workers following version {version}: {following}")


@dataclass
class RawAnswer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> dict[str, object]:
        return dict(json.loads(self.body))


def raw_request(
    port: int,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> RawAnswer:
    """A request with the path exactly as given: httpx would normalise `..` away."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        return RawAnswer(response.status, response.headers, response.read())
    finally:
        connection.close()


@contextmanager
def nginx_process(config_text: str, port: int) -> Iterator[Process]:
    """Debian's nginx with `config_text`, its prefix (pid file) in a temp dir."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise RuntimeError(
            "nginx is not installed: `make test` (or .ci/run) installs it"
        )
    prefix = Path(tempfile.mkdtemp(prefix="edge-nginx-"))
    (prefix / "nginx.conf").write_text(config_text)
    cmd = [
        nginx,
        "-p",
        str(prefix),
        "-c",
        str(prefix / "nginx.conf"),
        "-g",
        "daemon off;",
    ]
    check = subprocess.run([*cmd[:5], "-t"], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"nginx -t refused the exported config:\n{check.stderr}")
    try:
        with _running("nginx", cmd, port, {}, "/") as service:
            yield service
    finally:
        shutil.rmtree(prefix, ignore_errors=True)
