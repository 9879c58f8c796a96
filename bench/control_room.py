"""What the control room costs a sale: the Tourney page's p99 ratio with it open and
with it closed, alternating, in the same run.

    python -m common.devstack run python -m bench.control_room [--rounds 3]
        [--after 22] [--baseline 15] [--idle-seconds 30]

Starts the order path as the Procfile runs it (on free ports, databases of its own),
a fulfillment worker and the edge in front. First the edge's CPU with no load, the
feed closed and open in turn (--idle-seconds each, twice). Then `manage.py sale run
--no-start --mode strangler` 2 x --rounds times, open and closed in turn (open first
in odd rounds, closed first in even ones). "Open" is a viewer on the control room's
feed for the whole run: a websocket client taking every tick, as the page does (a
browser on another machine draws them, so its own CPU is not the stack's). Each run
reports the Tourney page's p99 ratio (sale / baseline, from the run's summary.json)
and the edge's CPU time (its process tree, user + system, /proc). Prints each run,
the median and spread of each arm, and writes
`reports/bench-control-room-<timestamp>.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import websocket

from bench.cpu import cpu_seconds
from bench.reports import machine_describe, report_stamp, report_write
from common.harness.orders_stack import OrdersStack, orders_stack
from common.harness.processes import Process
from common.harness.services import procfile_process

ROOT = Path(__file__).resolve().parent.parent


class Viewer(threading.Thread):
    """The control room open: a websocket on its feed, every tick taken."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(name="control-room-viewer", daemon=True)
        self.socket = websocket.create_connection(
            url, header=[f"Authorization: Bearer {token}"], timeout=10
        )
        self.ticks = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            try:
                message = json.loads(self.socket.recv())
            except (websocket.WebSocketException, OSError, ValueError):
                return
            self.ticks += message.get("type") == "tick"

    def close(self) -> None:
        self._done.set()
        self.socket.close()
        self.join(timeout=5)


@contextmanager
def stack_with_edge(token: str) -> Iterator[tuple[OrdersStack, Process]]:
    with orders_stack("bench-cr", warehouse_handling_ms=50) as running:
        running.fulfillment_worker()
        env = {
            **running.env,
            "ORDERS_URL": running.orders.url,
            "EDGE_ADMIN_TOKEN": token,
            "EDGE_MODE_KEY": f"edge:bench:{uuid.uuid4().hex}:mode",
            "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="edge-metrics-"),
            "OTEL_TRACES_EXPORTER": "none",
        }
        with procfile_process("edge", env=env) as edge:
            yield running, edge


def sale_once(
    running: OrdersStack, edge: Process, reports: Path, load: list[str]
) -> dict[str, Any]:
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        **running.env,
        "EDGE_MODE_KEY": edge.env["EDGE_MODE_KEY"],
        "EDGE_URL": edge.url,
        "SHOP_URL": running.shop.url,
        "ORDERS_URL": running.orders.url,
        "WAREHOUSE_URL": running.warehouse_url,
        "OTEL_TRACES_EXPORTER": "none",
    }
    before = set(reports.glob("sale-*"))
    done = subprocess.run(
        [sys.executable, "manage.py", "sale", "run", "--no-start", "--no-traces",
         "--mode", "strangler", "--reports-dir", str(reports), *load],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(
            f"sale run failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    (report,) = set(reports.glob("sale-*")) - before
    summary = json.loads((report / "summary.json").read_text())
    figures = summary["modes"]["strangler"]
    return {
        "tourney_p99_ratio": summary["headline"]["tourney_p99_ratio_strangler"],
        "tourney_p99_ms": figures["sale"]["tourney"]["p99_ms"],
        "tourney_p50_ms": figures["sale"]["tourney"]["p50_ms"],
        "baseline_p99_ms": figures["baseline"]["tourney"]["p99_ms"],
        "lost_duplicated_oversold": [
            figures["orders"][k] for k in ("lost", "duplicated", "oversold")
        ],
    }


def run_arm(
    arm: str, running: OrdersStack, edge: Process, token: str, args: argparse.Namespace
) -> dict[str, Any]:
    load = ["--baseline", str(args.baseline), "--after", str(args.after)]
    viewer = None
    if arm == "open":
        url = f"ws://127.0.0.1:{edge.env['EDGE_ADMIN_PORT']}/_edge/control/feed"
        viewer = Viewer(url, token)
        viewer.start()
    cpu_before, started = cpu_seconds([edge.pid]), time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-cr-") as reports:
        result = sale_once(running, edge, Path(reports), load)
    result["edge_cpu_s"] = round(cpu_seconds([edge.pid]) - cpu_before, 2)
    result["seconds"] = round(time.monotonic() - started, 1)
    if viewer is not None:
        viewer.close()
        result["ticks"] = viewer.ticks
    return {"arm": arm, **result}


def idle_cost(edge: Process, token: str, seconds: float) -> list[dict[str, Any]]:
    """The edge's CPU with no load: feed closed, open, closed, open (ms a second)."""
    found = []
    for arm in ("closed", "open", "closed", "open"):
        viewer = None
        if arm == "open":
            url = f"ws://127.0.0.1:{edge.env['EDGE_ADMIN_PORT']}/_edge/control/feed"
            viewer = Viewer(url, token)
            viewer.start()
        before = cpu_seconds([edge.pid])
        time.sleep(seconds)
        used = cpu_seconds([edge.pid]) - before
        if viewer is not None:
            viewer.close()
        found.append({"arm": arm, "edge_cpu_ms_per_s": round(used * 1000 / seconds, 1)})
        print(json.dumps(found[-1]), flush=True)
    return found


def spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--after", type=float, default=22.0)
    parser.add_argument("--baseline", type=float, default=15.0)
    parser.add_argument(
        "--idle-seconds", type=float, default=30.0, help="each idle measurement"
    )
    args = parser.parse_args(argv)
    token = secrets.token_urlsafe(24)
    runs: list[dict[str, Any]] = []
    with stack_with_edge(token) as (running, edge):
        idle = idle_cost(edge, token, args.idle_seconds)
        for number in range(args.rounds):
            arms = ("open", "closed") if number % 2 == 0 else ("closed", "open")
            for arm in arms:
                run = run_arm(arm, running, edge, token, args)
                runs.append({"round": number + 1, **run})
                print(json.dumps(runs[-1]), flush=True)
    keys = ("tourney_p99_ratio", "tourney_p99_ms", "edge_cpu_s") if runs else ()
    arms_summary = {
        arm: {
            "idle_edge_cpu_ms_per_s": spread(
                [i["edge_cpu_ms_per_s"] for i in idle if i["arm"] == arm]
            ),
            **{key: spread([r[key] for r in runs if r["arm"] == arm]) for key in keys},
        }
        for arm in ("open", "closed")
    }
    print(json.dumps(arms_summary, indent=2))
    report = {
        "machine": machine_describe(),
        "options": vars(args),
        "idle": idle,
        "runs": runs,
        "arms": arms_summary,
    }
    print("written:", report_write("control-room", report_stamp(), report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
