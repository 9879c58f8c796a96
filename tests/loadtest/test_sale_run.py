"""A miniature sale, end to end: `manage.py sale run` against the real stack, on each
of the edge's engines (`--edge-engine python|nginx`).

Every process is real (warehouse, shop, orders service, relay, both Celery workers,
the edge in front), each on a database and Redis names of its own. The run resets,
flips the edge, loads it (buyers arriving open loop, the Tourney page watched at a
fixed rate, Locust's shoppers), drains and reconciles, in both modes. The test checks
what must hold whatever the machine's speed: the report's contract keys, its files,
no order lost, duplicated or oversold, and the queue's orders in the warehouse never
above its concurrency. Not its timings.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtest.config import MUSKIE_SKU, Endpoints
from loadtest.operations import Stack
from tests.support.edge import ENGINES, Process, edge_process, engine_of
from tests.support.orders_stack import OrdersStack, orders_stack
from tests.support.processes import ROOT

pytestmark = pytest.mark.stack

CONTRACT_FIGURES = {"requests", "failures", "rps", "p50_ms", "p95_ms", "p99_ms"}
CONTRACT_ORDERS = {
    "attempted", "accepted", "sold_out", "rejected", "fulfilled", "failed",
    "lost", "duplicated", "oversold",
}  # fmt: skip
HEADLINE = {
    "tourney_p99_ratio_legacy",
    "tourney_p99_ratio_strangler",
    "muskie_accept_p99_ms_legacy",
    "muskie_accept_p99_ms_strangler",
}
UNITS = 12


@pytest.fixture(scope="module")
def orders() -> Iterator[OrdersStack]:
    with orders_stack("loadtest", warehouse_handling_ms=20) as running:
        running.fulfillment_worker(FULFILLMENT_CONCURRENCY="2")
        yield running


@pytest.fixture(scope="module", params=ENGINES)
def stack(
    request: pytest.FixtureRequest, orders: OrdersStack
) -> Iterator[tuple[OrdersStack, Process]]:
    """The stack with the edge on each engine in turn."""
    with edge_process(
        orders.shop.url,
        orders.orders.url,
        engine=str(request.param),
        REDIS_URL=orders.env["REDIS_URL"],
        SALE_SITE_DIR=orders.env["SALE_SITE_DIR"],
    ) as edge:
        yield orders, edge


def sale_run(
    stack: tuple[OrdersStack, Process], reports: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    running, edge = stack
    env = {
        **running.env,
        "EDGE_MODE_KEY": edge.env["EDGE_MODE_KEY"],
        "EDGE_URL": edge.url,
        "SHOP_URL": running.shop.url,
        "ORDERS_URL": running.orders.url,
        "WAREHOUSE_URL": running.warehouse_url,
        "FULFILLMENT_CONCURRENCY": "2",
        "OTEL_TRACES_EXPORTER": "none",
    }
    return subprocess.run(
        [
            sys.executable, "manage.py", "sale", "run", "--no-start", "--no-traces",
            "--reports-dir", str(reports), "--edge-engine", engine_of(edge), *args,
        ],
        cwd=ROOT,
        env={**_base_env(), **env},
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}


def test_a_miniature_sale_in_both_modes_accounts_for_every_order(
    stack: tuple[OrdersStack, Process], tmp_path: Path
) -> None:
    # Given the whole stack, the edge in front, and a sale of 12 rods in each mode
    # When a miniature sale runs: a few browsers, a Tourney buyer, the Tourney page
    # watched 5 times a second, and 24 Muskie buyers arriving 6 a second, open loop
    done = sale_run(
        stack, tmp_path,
        "--units", str(UNITS), "--warmup", "1", "--baseline", "3",
        "--buyers", "24", "--arrival-rate", "6", "--after", "3",
        "--tourney-rate", "5", "--browsers", "2", "--tourney-buyers", "1",
        "--drain-timeout", "60",
    )  # fmt: skip

    # Then it succeeds and says every order is accounted for
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "none lost, duplicated or oversold" in done.stdout
    (report,) = tmp_path.glob("sale-*")
    summary = json.loads((report / "summary.json").read_text())
    # And it names the engine the edge ran, which is the one that answered the public
    # port in each mode (nginx answers its health check itself, as `Server: nginx`)
    engine = engine_of(stack[1])
    assert summary["run"]["edge_engine"] == engine
    assert summary["run"]["source_addresses"] is True
    for mode, figures in summary["modes"].items():
        seen = figures["edge"]
        assert (seen["engine"], seen["mode"]) == (engine, mode), seen
        assert seen["server"].startswith("nginx") == (engine == "nginx"), seen
    summary_md = (report / "summary.md").read_text()
    assert f"the edge on the **{engine}** engine" in summary_md
    assert ("starts no trace" in summary_md) == (engine == "nginx")
    # And summary.json keeps its contract
    assert set(summary["modes"]) == {"legacy", "strangler"}
    assert set(summary["headline"]) >= HEADLINE
    for mode, figures in summary["modes"].items():
        assert set(figures["baseline"]["tourney"]) >= CONTRACT_FIGURES, mode
        for block in ("tourney", "browse", "muskie_buy"):
            assert set(figures["sale"][block]) >= CONTRACT_FIGURES, (mode, block)
        orders = figures["orders"]
        assert set(orders) >= CONTRACT_ORDERS, mode
        assert {"capacity", "peak_in_flight", "refused"} <= set(figures["warehouse"])
        assert "peak_depth" in figures["queue"]
        assert isinstance(figures["drain_seconds"], float | int)
        # And nothing was lost, duplicated or oversold; every accepted order packed
        assert (orders["lost"], orders["duplicated"], orders["oversold"]) == (0, 0, 0)
        assert orders["accepted"] > 0, mode
        # (no fault is injected here: not one order may end failed)
        assert (orders["fulfilled"], orders["failed"]) == (orders["accepted"], 0), (
            mode,
            orders,
        )
        assert orders["accepted"] <= UNITS
        tourney = figures["tourney_orders"]
        assert (tourney["lost"], tourney["duplicated"]) == (0, 0), mode
        assert figures["drained"], mode
    # And the strangler's queue never let the warehouse refuse, nor had more of its
    # own orders in the warehouse than its concurrency
    strangler = summary["modes"]["strangler"]
    assert strangler["warehouse"]["refused"] == 0
    assert strangler["warehouse"]["peak_in_flight_by_source"].get("MU", 0) <= 2
    # And the summary says where the stack's CPU went: the orders service and the
    # edge worked, and the new path's cost per accepted order is there
    cpu = strangler["stack_cpu"]
    assert cpu["cpu_seconds"]["orders"] > 0, cpu
    assert cpu["cpu_seconds"]["edge"] > 0, cpu
    assert cpu["new_path_ms_per_accepted"] > 0, cpu
    # And every buyer arrived once, each answer timed from when it was due
    for mode, figures in summary["modes"].items():
        attempts = json.loads((report / mode / "attempts.json").read_text())
        muskie = [a for a in attempts if a["kind"] == "muskie"]
        assert len({a["buyer"] for a in muskie}) == 24, mode
        # each from an address of its own, which the edge limits apart (nginx's
        # limit_req and limit_conn too): no buyer refused by a per-client limit
        assert [a for a in muskie if a["status"] == 429] == [], mode
        assert all(a["due"] is not None for a in muskie), mode
        answered = [a for a in muskie if a["outcome"] in {"accepted", "sold_out"}]
        assert all(a["from_due_ms"] >= a["latency_ms"] for a in answered), mode
        # And the watcher fetched the Tourney page when due, every time: 5 a second
        # over the 3 s baseline and the 7 s sale (4 s of arrivals, 3 s after)
        ratio = figures["tourney_ratio"]
        assert (ratio["baseline_samples"], ratio["sale_samples"]) == (15, 35), mode
        # And the watched Tourney samples keep their trace ids, for whoever reads them
        with (report / mode / "samples.csv").open() as handle:
            assert "trace_id" in handle.readline()
    # And every file of the report was written
    for name in (
        "summary.md",
        "comparison.png",
        "tourney-latency.png",
        "muskie-accept.png",
        "warehouse.png",
        "queue.png",
        "orders.png",
    ):
        assert (report / name).stat().st_size > 0, name  # fmt: skip
    for mode in ("legacy", "strangler"):
        for name in (
            "locust-shoppers.html",
            "locust-shoppers_stats.csv",
            "locust-shoppers_stats_history.csv",
            "samples.csv",
            "attempts.json",
            "reconcile-inputs.json",
        ):
            assert (report / mode / name).stat().st_size > 0, (mode, name)  # fmt: skip
    assert (
        "| Lost / duplicated / oversold | 0 / 0 / 0 | 0 / 0 / 0 |"
        in (report / "summary.md").read_text()
    )


def test_a_run_on_another_engine_than_the_running_edges_is_refused(
    stack: tuple[OrdersStack, Process], tmp_path: Path
) -> None:
    # given the stack with its edge on one engine
    other = next(e for e in ENGINES if e != engine_of(stack[1]))
    # when a sale run asks for the other engine, then it stops before any load
    done = sale_run(stack, tmp_path, "--edge-engine", other)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"the running edge is on the {engine_of(stack[1])} engine" in done.stdout


def test_the_closed_loop_crowd_is_still_there_as_an_option(
    stack: tuple[OrdersStack, Process], tmp_path: Path
) -> None:
    # Given the whole stack and a sale of 12 rods, strangler mode only
    # When the buyers are Locust's closed loop (ramp, hold, fade), twice over
    done = sale_run(
        stack, tmp_path,
        "--mode", "strangler", "--closed-loop", "--repeat", "2",
        "--units", str(UNITS), "--warmup", "1", "--baseline", "3", "--ramp", "1",
        "--hold", "4", "--fade", "1", "--peak-buyers", "6", "--browsers", "1",
        "--tourney-buyers", "1", "--tourney-rate", "5", "--drain-timeout", "60",
    )  # fmt: skip

    # Then both rounds account for every order
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    (report,) = tmp_path.glob("sale-*")
    summary = json.loads((report / "summary.json").read_text())
    strangler = summary["modes"]["strangler"]
    assert strangler["orders"]["accepted"] > 0
    assert (report / "strangler" / "locust-buyers.html").stat().st_size > 0
    assert (report / "strangler-r2" / "attempts.json").stat().st_size > 0
    # And the report gives each headline figure's median and spread over the rounds
    assert summary["repeats"]["rounds"] == 2
    accept = summary["repeats"]["figures"]["muskie_accept_p99_ms"]["strangler"]
    assert len(accept["values"]) == 2
    assert accept["min"] <= accept["median"] <= accept["max"]
    assert summary["repeats"]["invariants_broken"] == []
    # And the rounds were all through the engine asked for, which the report names
    engine = engine_of(stack[1])
    assert summary["repeats"]["edge_engines"] == [engine]
    assert f"the edge on the {engine} engine" in (report / "summary.md").read_text()
    # And a closed-loop attempt has no due time: it is timed from Buy now
    attempts = json.loads((report / "strangler" / "attempts.json").read_text())
    assert all(a["due"] is None for a in attempts if a["kind"] == "muskie")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--units", "0"), "--units"),
        (("--peak-buyers", "zero"), "--peak-buyers"),
        (("--websocket-share", "1.5"), "--websocket-share"),
        (("--hold", "-3"), "--hold"),
        (("--mode", "canary"), "--mode"),
        (("--arrival-rate", "0"), "--arrival-rate"),
        (("--arrival-process", "bursty"), "--arrival-process"),
        (("--repeat", "0"), "--repeat"),
    ],
    ids=[
        "units-0",
        "buyers-word",
        "share-above-1",
        "hold-negative",
        "mode-unknown",
        "rate-0",
        "process-unknown",
        "repeat-0",
    ],
)
def test_bad_options_are_refused_before_anything_runs(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", "sale", "run", "--reports-dir", str(tmp_path),
         *args],
        cwd=ROOT, env=_base_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert done.returncode != 0
    assert message in done.stderr
    assert not list(tmp_path.iterdir())


def test_a_sale_path_cpu_list_that_names_no_cpu_is_refused_before_anything_runs(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", "sale", "run", "--reports-dir", str(tmp_path)],
        cwd=ROOT,
        env={**_base_env(), "SALE_PATH_CPUS": "1-0"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode != 0
    assert "SALE_PATH_CPUS" in done.stderr
    assert not list(tmp_path.iterdir())


class _LateLegacyPurchase(Stack):
    """The stack as a sale run meets it after the legacy mode: a purchase whose buyer
    gave up (a 504 at the edge) still waits for the row lock in the shop, and takes
    its unit just after the reset set the Muskie stock (here at once, by the shop's
    own stock API, as the purchase's commit would)."""

    late = 1

    def stock_set(self, sku: str, stock: int, *, run_tag: str) -> dict[str, object]:
        answer = super().stock_set(sku, stock, run_tag=run_tag)
        if sku == MUSKIE_SKU and self.late:
            self.late -= 1
            taken = self.http.post(
                self.endpoints.shop + "/internal/stock/transfers/",
                json={"transfer_id": f"late-{run_tag}", "sku": sku, "units": 1},
                headers=self._auth,
            )
            assert taken.status_code in (200, 201), taken.text
        return answer


def test_a_legacy_purchase_that_commits_after_the_reset_does_not_stop_the_sale(
    orders: OrdersStack,
) -> None:
    # Given the stack, and a late legacy purchase that takes a Muskie rod just after
    # the strangler reset set the shop's stock to the units for sale
    env = {
        **_base_env(),
        **orders.env,
        "SHOP_URL": orders.shop.url,
        "ORDERS_URL": orders.orders.url,
        "WAREHOUSE_URL": orders.warehouse_url,
    }
    stack = _LateLegacyPurchase(Endpoints.from_env(env), env)
    try:
        # When the run resets the strangler mode
        notes = stack.reset(mode="strangler", units=UNITS, run_tag="late")
        # Then the stock is set again and the sale opens with every unit
        assert any("set again" in note for note in notes), notes
        assert any(f"sale open with {UNITS} units" in note for note in notes), notes
    finally:
        stack.reset(mode="legacy", units=UNITS, run_tag="late-after")
        stack.close()
