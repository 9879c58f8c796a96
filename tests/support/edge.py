"""The edge router and its test origins as real processes on free ports.

`edge_process` runs the Procfile's own `edge:` line (uvicorn, uvloop, httptools,
EDGE_WORKERS workers; or with `engine="nginx"`, nginx driven by its control plane),
each with its own Redis key for the mode, so concurrent test runs and tests never see
each other's mode. `nginx_process` runs Debian's nginx with
a config written by `python manage.py edge export nginx`.
"""

from __future__ import annotations

import atexit
import http.client
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
import redis

from common.harness import nginx
from common.harness.processes import Process, free_port, venv_environ
from common.harness.procfile import procfile_argv
from common.harness.services import procfile_process

ADMIN_TOKEN = "test-admin-token"
# The edge's engines; the behaviour suites run against both.
ENGINES = ("python", "nginx")
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/5"

__all__ = ["Process"]


@contextmanager
def origin_process(
    name: str, *, reset_port: int = 0, stale_port: int = 0, keep_alive: float = 30.0
) -> Iterator[Process]:
    """tests/edge/origin_app.py: echoes, streams, stalls, resets, websockets."""
    port = free_port()
    cmd = [sys.executable, "-m", "tests.edge.origin_app", "--name", name]
    cmd += ["--port", str(port)]
    if reset_port:
        cmd += ["--reset-port", str(reset_port)]
    if stale_port:
        cmd += ["--stale-port", str(stale_port)]
    cmd += ["--keep-alive", str(keep_alive)]
    ready = f"http://127.0.0.1:{port}/__origin/inflight"
    with Process(f"origin-{name}", cmd, port=port, ready_url=ready) as service:
        yield service


def edge_command(port: int, *, workers: int = 2) -> list[str]:
    """The Procfile's edge line on `port`, its command found in this venv."""
    env = venv_environ({"EDGE_PORT": str(port), "EDGE_WORKERS": str(workers)})
    argv = procfile_argv("edge", env)
    return [shutil.which(argv[0], path=env["PATH"]) or argv[0], *argv[1:]]


MUSKIE_PAGE = b"<!doctype html><title>muskie</title><p>the static Muskie page</p>\n"
MUSKIE_CSS = b"p { color: #123; }\n"


def stand_in_site() -> str:
    """A stand-in for the sale's minisite (the edge's `muskie-site` origin): the page
    and one asset, in a directory nginx's workers (user nobody) can read too. Made
    once per test process; `SALE_SITE_DIR` of every edge unless a test gives one."""
    global _STAND_IN
    if _STAND_IN is None:
        root = Path(tempfile.mkdtemp(prefix="muskie-site-"))
        root.chmod(0o755)
        page = root / "shop" / "rods" / "muskie-casting-rod"
        (page / "assets").mkdir(parents=True)
        (page / "index.html").write_bytes(MUSKIE_PAGE)
        (page / "assets" / "site.css").write_bytes(MUSKIE_CSS)
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        _STAND_IN = str(root)
    return _STAND_IN


_STAND_IN: str | None = None


def edge_env(shop_url: str, orders_url: str, **extra: str) -> dict[str, str]:
    """The edge's environment. It is traced, as it runs for real, but exports its
    spans only when given a TRACES_DIR (tests.support.tracing.traced_env)."""
    quiet = {} if "TRACES_DIR" in extra else {"OTEL_TRACES_EXPORTER": "none"}
    return {
        **quiet,
        "SHOP_URL": shop_url,
        "ORDERS_URL": orders_url,
        "SALE_SITE_DIR": stand_in_site(),
        "REDIS_URL": os.environ.get("REDIS_URL", DEFAULT_REDIS_URL),
        "EDGE_MODE_KEY": f"edge:test:{uuid.uuid4().hex}:mode",
        "EDGE_ADMIN_TOKEN": ADMIN_TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="edge-metrics-"),
        **extra,
    }


@contextmanager
def edge_process(
    shop_url: str,
    orders_url: str,
    *,
    workers: int = 2,
    engine: str = "python",
    **extra: str,
) -> Iterator[Process]:
    """The Procfile's edge in front of `shop_url` and `orders_url`, a fresh mode key,
    on `engine` (its admin listener, for the nginx engine's control plane, on a free
    port)."""
    env = edge_env(
        shop_url,
        orders_url,
        EDGE_WORKERS=str(workers),
        EDGE_ENGINE=engine,
        EDGE_ADMIN_PORT=str(free_port()),
        **extra,
    )
    try:
        with procfile_process("edge", env=env) as edge:
            yield edge
    finally:
        shutil.rmtree(env["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
        key = env["EDGE_MODE_KEY"]
        redis.Redis.from_url(env["REDIS_URL"]).delete(key, key + ":version")


def admin_url(edge: Process) -> str:
    """The edge's admin listener (/_edge/* but the health check)."""
    return f"http://127.0.0.1:{edge.env['EDGE_ADMIN_PORT']}"


def mode_post(edge: Process, mode: str, percent: int | None = None) -> int:
    """POST the mode to the edge's admin listener; the version it was given."""
    body: dict[str, object] = {"mode": mode}
    if percent is not None:
        body["percent"] = percent
    answer = httpx.post(
        admin_url(edge) + "/_edge/mode",
        json=body,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=5,
    )
    answer.raise_for_status()
    return int(answer.json()["version"])


def set_mode(
    edge: Process, mode: str, percent: int | None = None, *, workers: int = 2
) -> int:
    """Switch the edge's mode and wait until every worker says it follows it."""
    version = mode_post(edge, mode, percent)
    wait_for_version(edge, version, workers)
    return version


def wait_for_version(edge: Process, version: int, workers: int = 2) -> None:
    """Poll /_edge/healthz (new connections) until `workers` pids report `version`.

    Under nginx, a reload starts new workers before the old ones stop accepting: it
    then also waits until every worker of nginx's master still accepting is one that
    answered with the new version (else an old one may take the next connection)."""
    following: set[int] = set()
    deadline = time.monotonic() + 10
    while len(following) < workers or not _only_workers(edge, following):
        health = httpx.get(edge.url + "/_edge/healthz", timeout=2).json()
        if health["version"] >= version:
            following.add(health["worker"])
        if time.monotonic() > deadline:
            raise AssertionError(f"workers following version {version}: {following}")


def _only_workers(edge: Process, following: set[int]) -> bool:
    """True unless nginx's master has a worker outside `following` (the Python
    engine's workers never hold an older mode once they report the new one)."""
    if engine_of(edge) != "nginx":
        return True
    for child in psutil.Process(edge.pid).children(recursive=True):
        try:
            title = " ".join(child.cmdline())
        except psutil.Error:  # gone between the listing and the read
            continue
        # An old worker's title says "shutting down" once it stops accepting.
        accepting = "worker process" in title and "shutting down" not in title
        if accepting and child.pid not in following:
            return False
    return True


def engine_of(edge: Process) -> str:
    return edge.env.get("EDGE_ENGINE", "python")


def python_only(edge: Process, why: str) -> None:
    """Skip for the nginx engine what stock nginx cannot do (docs/guides/edge-router.md
    lists each)."""
    if engine_of(edge) == "nginx":
        pytest.skip(f"the nginx engine {why}")


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
    with nginx.nginx_process("nginx", config_text, port) as process:
        yield process
