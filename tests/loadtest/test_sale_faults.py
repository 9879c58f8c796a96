"""Faults inside a miniature sale: `sale run --chaos`, and a run interrupted mid-fault.

The whole stack is real (warehouse, shop, orders, relay, both workers, the edge), on
a Redis server of this module's own (a `redis.pause` pauses the whole server: others'
tests must not wait on it), with the relay and workers under the launcher's
supervisor, so `kill:fulfillment-worker` is healed as `make demo` heals it. The
chaos preset plays every fault class once inside a strangler sale (legacy mode under
the same faults is measured, not tested: docs/results/2026-12-06-faults.md); the
run's reconcile must still hold: nothing lost, duplicated or oversold, every accepted
order fulfilled or failed in the open (with its dead letter, replayable), none stuck.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from common import faults
from common.harness.supervisor import Supervisor
from tests.support.edge import Process, edge_process
from tests.support.orders_stack import OrdersStack, orders_stack, wait_until
from tests.support.processes import ROOT
from tests.support.redis_server import redis_server

pytestmark = pytest.mark.stack

UNITS = 12
MINIATURE = (
    "--units", str(UNITS), "--warmup", "1", "--baseline", "3",
    "--buyers", "24", "--arrival-rate", "3", "--after", "3",
    "--tourney-rate", "5", "--browsers", "2", "--tourney-buyers", "1",
    "--drain-timeout", "90",
)  # fmt: skip
FAULT_CLASSES = {
    "warehouse.latency_ms", "warehouse.error_rate", "warehouse.down",
    "warehouse.capacity", "redis.pause", "orders.db_terminate", "kill",
}  # fmt: skip


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="module")
def stack(
    private_redis: str,
) -> Iterator[tuple[OrdersStack, Process, Supervisor, list[str]]]:
    # A warehouse slow enough (300 ms an order, 2 at once) that the first faults
    # meet the opening rush; the stack's processes re-read the faults every 0.1 s;
    # a killed worker's message comes back within seconds, not a minute.
    env = {
        "FAULTS_POLL_SECONDS": "0.1",
        "FULFILLMENT_VISIBILITY_TIMEOUT": "3",
        "FULFILLMENT_RESTORE_INTERVAL": "1",
    }
    with orders_stack(
        "faults", redis_url=private_redis, warehouse_handling_ms=300, env=env
    ) as running:
        running.fulfillment_worker(FULFILLMENT_CONCURRENCY="2")
        said: list[str] = []
        supervisor = running.supervisor(say=said.append, restart_delay=0.5, poll=0.2)
        supervisor.start()
        try:
            with edge_process(
                running.shop.url, running.orders.url, REDIS_URL=private_redis
            ) as edge:
                yield running, edge, supervisor, said
        finally:
            supervisor.stop_soon()


def sale_env(running: OrdersStack, edge: Process) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    return {
        **base,
        **running.env,
        "EDGE_MODE_KEY": edge.env["EDGE_MODE_KEY"],
        "EDGE_URL": edge.url,
        "SHOP_URL": running.shop.url,
        "ORDERS_URL": running.orders.url,
        "WAREHOUSE_URL": running.warehouse_url,
        "FULFILLMENT_CONCURRENCY": "2",
        "OTEL_TRACES_EXPORTER": "none",
    }


def sale_command(reports: Path, *args: str) -> list[str]:
    return [
        sys.executable, "manage.py", "sale", "run", "--no-start", "--no-traces",
        "--reports-dir", str(reports), *MINIATURE, *args,
    ]  # fmt: skip


def test_a_chaos_sale_loses_duplicates_oversells_nothing_and_leaves_none_stuck(
    stack: tuple[OrdersStack, Process, Supervisor, list[str]], tmp_path: Path
) -> None:
    running, edge, _, said = stack
    # Given the whole stack, its relay and workers supervised
    # When a miniature strangler sale runs with every fault class once, and the
    # warehouse down again while the queue holds the buyers' orders
    done = subprocess.run(
        sale_command(
            tmp_path,
            "--mode",
            "strangler",
            "--chaos",
            "--fault",
            "warehouse.down@+1.5s/3s",
        ),
        cwd=ROOT,
        env=sale_env(running, edge),
        capture_output=True,
        text=True,
        timeout=600,
    )

    # Then every order is accounted for
    (tmp_path / "run.log").write_text(done.stdout + done.stderr)
    output = done.stdout[-6000:] + done.stderr[-3000:]
    assert done.returncode == 0, output
    (report,) = tmp_path.glob("sale-*")
    summary = json.loads((report / "summary.json").read_text())
    strangler = summary["modes"]["strangler"]
    block, orders = strangler["faults"], strangler["orders"]
    # And every fault class was injected inside the sale, the extra outage too
    assert {f["name"] for f in block["injected"]} == FAULT_CLASSES
    assert len(block["injected"]) == len(FAULT_CLASSES) + 1
    assert all(f["ok"] for f in block["injected"]), block["injected"]
    assert orders["accepted"] > 0
    assert (orders["lost"], orders["duplicated"], orders["oversold"]) == (0, 0, 0)
    assert strangler["tourney_orders"]["lost"] == 0
    # And none is stuck after the drain
    assert strangler["drained"], output
    # And the killed worker came back, counted as a restart
    assert block["restarts"] == {"fulfillment-worker": 1}, said
    # And each accepted order is fulfilled, or failed in the open with a dead letter
    assert orders["fulfilled"] + orders["failed"] == orders["accepted"], orders
    assert block["dead_letters"]["open"] == orders["failed"]
    # And the warehouse refused by fault while the queue held the orders
    assert block["warehouse"]["refused_by_fault"]["warehouse_down"] > 0, block
    # And the shop's Tourney buyers never met a fault of the new path's
    assert block["customers"]["tourney_failures"] == 0, output
    # And the report names the faults, on the console, in summary.md and the charts
    assert "## Faults" in (report / "summary.md").read_text()
    assert "fault: kill fulfillment-worker" in done.stdout
    # And no fault outlives the run
    assert faults.fault_list(store=running.fault_store()) == []
    # And a failed order, if any, is replayed from its dead letter to fulfilled
    if orders["failed"]:
        running.queue_manage("fulfillment", "dlq", "replay", "--all")
        wait_until(
            lambda: running.order_statuses()["failed"] == 0,
            timeout=60,
            what="the dead letters replayed",
        )


def test_an_interrupted_sale_run_clears_the_faults_it_set(
    stack: tuple[OrdersStack, Process, Supervisor, list[str]], tmp_path: Path
) -> None:
    running, edge, _, _ = stack
    store = running.fault_store()
    # Given a sale run that has switched the warehouse down for a minute
    run = subprocess.Popen(
        sale_command(
            tmp_path, "--mode", "strangler", "--fault", "warehouse.down@+0s/60s"
        ),
        cwd=ROOT,
        env=sale_env(running, edge),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(
            lambda: (
                [f.name for f in faults.fault_list(store=store)] == ["warehouse.down"]
                or run.poll() is not None
            ),
            timeout=180,
            what="the run's fault in force",
        )
        assert run.poll() is None, run.communicate()[0][-3000:]

        # When it is interrupted, as Ctrl-C does
        run.send_signal(signal.SIGINT)
        output, _ = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()

    # Then it ends as interrupted, having cleared its fault at once (not by TTL)
    assert run.returncode == 130, output[-3000:]
    assert "interrupted: the faults it set are cleared" in output
    assert faults.fault_list(store=store) == []
