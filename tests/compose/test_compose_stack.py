"""`docker compose up`, proven: the image builds, the stack runs in containers on a real
engine, and the newcomer's story passes through the edge.

docker-compose.yml runs unchanged but for tests/compose/docker-compose.test.yml (what
this machine forces: host networking, free ports, local images; see that file), driven
by Debian's docker-compose 1.29. Skipped only where no Docker engine runs or can be
started. Timings of the last run: reports/compose-timings.txt.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ruamel.yaml import YAML

from common.fault_kills import KILLED_STATUS
from common.harness.processes import free_ports
from tests.compose import engine

ROOT = engine.ROOT
COMPOSE_FILES = (ROOT / "docker-compose.yml", engine.HERE / "docker-compose.test.yml")
PROJECT = "strangler-compose-test"
APP_IMAGE = "strangler-fishing-shop:dev"
ONE_SHOTS = {"setup", "sale-open"}
MUSKIE = "/shop/rods/muskie-casting-rod/"
TOURNEY = "/shop/rods/tourney-casting-rod/"
HEALTHY_WITHIN_S = 420
TIMINGS = ROOT / "reports" / "compose-timings.txt"

pytestmark = pytest.mark.compose


class Stack:
    def __init__(self, env: dict[str, str], ports: dict[str, int], work: Path) -> None:
        self.env = env
        self.edge = f"http://127.0.0.1:{ports['edge']}"
        # The edge's admin listener (/_edge/* but the health check), on loopback.
        self.edge_admin = f"http://127.0.0.1:{ports['edge_admin']}"
        self.otlp = f"http://127.0.0.1:{ports['otlp']}"
        self.admin_token = env["EDGE_ADMIN_TOKEN"]
        self.files = [arg for path in COMPOSE_FILES for arg in ("-f", str(path))]
        self.files = ["-f", str(self.without_published_ports(work))]
        # Steps the tests time inside the stack's lifetime, written with the fixture's.
        self.timings: dict[str, float] = {}

    def without_published_ports(self, work: Path) -> Path:
        """The two files merged by compose itself, less every `ports:`. With host
        networking a published port means nothing and the engine refuses one; Compose
        v2 would say `ports: !reset []` in the override, v1's merge cannot."""
        merged = YAML(typ="safe").load(self.compose("config", timeout=60))
        for service in merged["services"].values():
            service.pop("ports", None)
        # JSON is YAML that every parser reads alike (`restart: no` is not).
        resolved = work / "docker-compose.resolved.json"
        resolved.write_text(json.dumps(merged, indent=1))
        return resolved

    def compose(self, *args: str, timeout: float = 600) -> str:
        command = [
            compose_cli(),
            "-p",
            PROJECT,
            "--project-directory",
            str(ROOT),
            *self.files,
            *args,
        ]
        result = subprocess.run(
            command,
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(
                f"docker-compose {' '.join(args)}: {result.stderr[-3000:]}\n"
                + self.logs()
            )
        return result.stdout

    def logs(self, *services: str) -> str:
        """The last lines of each service's log (of every service when none named)."""
        result = subprocess.run(
            [
                compose_cli(),
                "-p",
                PROJECT,
                *self.files,
                "logs",
                "--no-color",
                "--tail=40",
                *services,
            ],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return result.stdout[-15000:]

    def states(self) -> dict[str, tuple[str, str, int]]:
        """service → (status, health or "", exit code) of each of its containers."""
        ids = self.compose("ps", "-q", "-a", timeout=60).split()
        states = {}
        for line in engine.docker(
            "inspect",
            "--format",
            '{{index .Config.Labels "com.docker.compose.service"}} {{.State.Status}}'
            " {{if .State.Health}}{{.State.Health.Status}}{{else}}-{{end}}"
            " {{.State.ExitCode}}",
            *ids,
        ).splitlines():
            service, status, health, code = line.split()
            states[service] = (status, health, int(code))
        return states

    def container(self, service: str) -> dict[str, Any]:
        """`docker inspect` of the one container of `service`."""
        (container_id,) = self.compose("ps", "-q", service, timeout=60).split()
        inspected: list[dict[str, Any]] = json.loads(
            engine.docker("inspect", container_id)
        )
        return inspected[0]

    def exit_codes(self, container_id: str, since: float) -> list[int]:
        """The exit codes of the container's deaths since `since` (the engine's
        events: a restarted container's state no longer shows them)."""
        return [
            int(code)
            for code in engine.docker(
                "events",
                "--since",
                f"{since:.0f}",
                "--until",
                f"{time.time():.0f}",
                "--filter",
                f"container={container_id}",
                "--filter",
                "event=die",
                "--format",
                '{{index .Actor.Attributes "exitCode"}}',
            ).split()
        ]


def compose_cli() -> str:
    found = shutil.which("docker-compose")
    if not found:
        pytest.fail("docker-compose is not installed: `make compose-tools` (apt-get)")
    return found


def wait_until_every_service_is_healthy(stack: Stack) -> None:
    deadline = time.monotonic() + HEALTHY_WITHIN_S
    while True:
        states = stack.states()
        failed = {s: st for s, st in states.items() if s in ONE_SHOTS and st[2] != 0}
        assert not failed, f"one-shot failed: {failed}\n{stack.logs()}"
        waiting = {
            service: state
            for service, state in states.items()
            if (service in ONE_SHOTS and state[0] != "exited")
            or (service not in ONE_SHOTS and state[1] != "healthy")
        }
        if not waiting:
            return
        assert time.monotonic() < deadline, f"not healthy: {waiting}\n{stack.logs()}"
        time.sleep(2)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    timings: dict[str, float] = {}
    started = time.monotonic()
    try:
        running_engine = engine.engine_start()
    except engine.EngineUnavailable as reason:
        pytest.skip(f"no Docker engine can be started here: {reason}")
    timings["engine"] = time.monotonic() - started
    mark = time.monotonic()
    cold = engine.base_image_ensure()
    timings["base image (cold)" if cold else "base image (cached)"] = (
        time.monotonic() - mark
    )
    mark = time.monotonic()
    engine.images_build(APP_IMAGE)
    timings["images"] = time.monotonic() - mark
    names = ("pg", "redis", "shop", "orders", "warehouse", "edge", "edge_admin", "otlp")
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        **{f"TEST_{name.upper()}_PORT": str(port) for name, port in ports.items()},
        "TEST_POSTGRES_IMAGE": engine.POSTGRES_IMAGE,
        "TEST_REDIS_IMAGE": engine.REDIS_IMAGE,
        "TEST_OTLP_SINK_IMAGE": engine.OTLP_SINK_IMAGE,
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(32),
        "INTERNAL_API_TOKEN": secrets.token_urlsafe(32),
        "EDGE_ADMIN_TOKEN": secrets.token_urlsafe(32),
    }
    running = Stack(env, ports, tmp_path_factory.mktemp("compose"))
    running.compose("down", "--volumes", "--remove-orphans", timeout=300)
    try:
        mark = time.monotonic()
        running.compose("up", "--detach", "--no-build", timeout=HEALTHY_WITHIN_S)
        wait_until_every_service_is_healthy(running)
        timings["up until every service is healthy"] = time.monotonic() - mark
        yield running
    finally:
        mark = time.monotonic()
        running.compose("down", "--volumes", "--remove-orphans", timeout=300)
        timings.update(running.timings)
        timings["down"] = time.monotonic() - mark
        running_engine.stop()
        timings["total"] = time.monotonic() - started
        TIMINGS.parent.mkdir(exist_ok=True)
        TIMINGS.write_text(
            "".join(f"{name}: {seconds:.1f} s\n" for name, seconds in timings.items())
        )


def edge_mode_set(stack: Stack, mode: str) -> None:
    """Switch the edge's mode on its admin listener (the public port answers 404),
    then wait until both of its workers follow it."""

    def post(base: str) -> httpx.Response:
        return httpx.post(
            base + "/_edge/mode",
            json={"mode": mode},
            headers={"Authorization": f"Bearer {stack.admin_token}"},
            timeout=10,
        )

    public = post(stack.edge)
    assert public.status_code == 404, public.text
    answer = post(stack.edge_admin)
    assert answer.status_code == 200, answer.text
    version = int(answer.json()["version"])
    following: set[int] = set()
    deadline = time.monotonic() + 15
    while len(following) < 2:
        health = httpx.get(stack.edge + "/_edge/healthz", timeout=5).json()
        if health["version"] >= version:
            following.add(health["worker"])
        assert time.monotonic() < deadline, f"workers following: {following}"


def hidden_inputs(page: str) -> dict[str, str]:
    return dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page))


def buy_now(visitor: httpx.Client, stack: Stack, page_path: str) -> httpx.Response:
    page = visitor.get(page_path)
    assert page.status_code == 200, page.text
    return visitor.post(
        page_path + "buy/",
        data={
            **hidden_inputs(page.text),
            "quantity": "1",
            "email": "compose@example.com",
        },
        headers={"Origin": stack.edge, "Referer": stack.edge + page_path},
    )


def muskie_order_fulfilled(visitor: httpx.Client, stack: Stack) -> str:
    """Buy a Muskie rod on the new path; its id once the queue has fulfilled it."""
    strangler = buy_now(visitor, stack, MUSKIE)
    assert strangler.status_code == 303, strangler.text + stack.logs("edge", "orders")
    assert strangler.headers["x-edge-origin"] == "orders"
    order_id = strangler.headers["location"].rstrip("/").rsplit("/", 1)[-1]
    deadline = time.monotonic() + 60
    while (status := visitor.get(f"/api/orders/{order_id}/").json()["status"]) != (
        "fulfilled"
    ):
        assert time.monotonic() < deadline, f"order {order_id} still {status}"
        time.sleep(0.5)
    return order_id


def test_the_newcomers_story_passes_through_the_edge_of_the_compose_stack(
    stack: Stack,
) -> None:
    with httpx.Client(base_url=stack.edge, timeout=15) as visitor:
        # Given the stack as `docker compose up` runs it, the edge in legacy mode
        home = visitor.get("/", follow_redirects=True)
        assert home.status_code == 200
        assert home.headers["x-edge-origin"] == "shop"
        assert "Muskie Casting Rod" in home.text
        # When a visitor browses a category and the Tourney rod
        rods = visitor.get("/shop/rods/")
        assert rods.status_code == 200
        assert "Tourney Casting Rod" in rods.text
        tourney = visitor.get(TOURNEY)
        assert tourney.status_code == 200
        assert tourney.headers["x-edge-origin"] == "shop"
        # And buys a Muskie rod with buy now on the legacy path
        legacy = buy_now(visitor, stack, MUSKIE)
        # Then the shop took the order
        assert legacy.status_code == 303, legacy.text
        assert re.search(r"/orders/[A-Z0-9-]+/$", legacy.headers["location"])

        # When the edge sends the Muskie rod to the new path
        edge_mode_set(stack, "strangler")
        # Then the orders service accepts a Muskie order, and the queue fulfils it
        muskie_order_fulfilled(visitor, stack)

        # And when the edge goes back to legacy, the Muskie rod is the shop's again
        edge_mode_set(stack, "legacy")
        assert visitor.get(MUSKIE).headers["x-edge-origin"] == "shop"


def test_every_service_sends_its_spans_over_otlp_and_no_probe_is_traced(
    stack: Stack,
) -> None:
    # Given the stack after the story (the exporters flush within seconds)
    time.sleep(6)
    spans = httpx.get(stack.otlp + "/spans", timeout=10).json()
    # Then the receiver behind `jaeger:4318` has spans of the order's whole path
    services = {span["service"] for span in spans}
    assert {"edge", "shop", "orders-api", "fulfillment-worker", "warehouse"} <= services
    # And none is a healthcheck's request, though every probe ran many times
    targets = json.dumps([span["attributes"] for span in spans])
    assert "healthz" not in targets
    assert "readyz" not in targets


def test_the_code_in_the_image_is_roots_and_only_the_data_directory_is_writable(
    stack: Stack,
) -> None:
    # Given the image every Python service runs, when its user tries to write
    script = (
        "import os, pathlib; "
        "print(os.getuid() != 0, os.access('/app/manage.py', os.W_OK), "
        "os.access('/app', os.W_OK), os.access('/app/.data', os.W_OK), "
        "pathlib.Path('/app/tests').exists(), pathlib.Path('/app/docs').exists())"
    )
    out = engine.docker(
        "run", "--rm", "--network", "none", APP_IMAGE, "python", "-c", script
    )
    # Then it is not root, cannot change the code, writes only .data; no tests, no docs
    assert out.split() == ["True", "False", "False", "True", "False", "False"]


def test_faults_kill_ends_the_fulfillment_worker_and_compose_starts_it_again(
    stack: Stack,
) -> None:
    started = time.monotonic()
    # Given the fulfillment worker's container, up since the stack came up
    before = stack.container("fulfillment-worker")
    since = time.time() - 1
    # When a user kills the worker as the faults guide says, from another service
    answer = stack.compose(
        "exec", "-T", "shop", "python", "manage.py", "faults", "kill",
        "fulfillment-worker",
    )  # fmt: skip
    # Then the worker said it killed itself
    assert re.search(r"killed fulfillment-worker \(pid \d+\)", answer), answer
    assert "killed itself" in answer, answer
    # And its container died by SIGKILL and compose's policy started the same one again
    deadline = time.monotonic() + 60
    while True:
        after = stack.container("fulfillment-worker")
        if (
            after["RestartCount"] > before["RestartCount"]
            and after["State"]["Status"] == "running"
        ):
            break
        assert time.monotonic() < deadline, f"not restarted: {after['State']}"
        time.sleep(0.5)
    assert after["Id"] == before["Id"]
    assert after["State"]["StartedAt"] > before["State"]["StartedAt"]
    assert KILLED_STATUS in stack.exit_codes(after["Id"], since)
    logs = stack.compose("logs", "--no-color", "fulfillment-worker", timeout=60)
    assert "kills itself on request" in logs
    # And a Muskie order placed after the restart still reaches fulfilled
    with httpx.Client(base_url=stack.edge, timeout=15) as visitor:
        edge_mode_set(stack, "strangler")
        muskie_order_fulfilled(visitor, stack)
        edge_mode_set(stack, "legacy")
    stack.timings["faults kill, restart, an order fulfilled"] = (
        time.monotonic() - started
    )
