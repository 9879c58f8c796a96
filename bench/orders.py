"""What an order costs the new path, as ratios to a bare-Django floor, same run.

    python -m bench.orders [--requests 1500] [--concurrency 8] [--rate 150]
                           [--paced-seconds 10]

Starts the order path as the Procfile runs it, untraced (OTEL_SDK_DISABLED=true):
warehouse, shop, orders (gunicorn + uvicorn workers), relay, orders-worker, one
fulfillment worker, each service on a throw-away database; and beside them the
FLOOR (bench/floor.py): the orders service's settings and serving model with one
plain view doing a Redis DECRBY and one transaction of two inserts. Then, each a
fixed load of `--requests` POSTs, `--concurrency` at a time:

  floor       POST /floor/                  CPU of the floor's process tree
  accept      POST /api/orders/ (202)       CPU of the orders service's tree
  whole path  the same orders, until every one is fulfilled: CPU of orders, relay,
              orders-worker, fulfillment worker and warehouse, per order
  sold out    POST /api/orders/ (409)       CPU of the orders service's tree
  open loop   `--rate` orders a second for `--paced-seconds`: accept p99 counted
              from when each order was due

CPU is user + system time from /proc of each process tree (psutil). Prints a table
with each goal's ratio and verdict; writes `reports/bench-orders-<timestamp>.json`.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from typing import Any

import psycopg

from bench import floor_process
from bench.cpu import cpu_seconds
from bench.orders_load import Load, load_closed, load_paced
from bench.profiles import profiles_recorded
from bench.reports import machine_describe, report_stamp, report_write
from common.harness.databases import database_url
from common.harness.orders_stack import OrdersStack, orders_stack

# Goals (issue 13): each a ratio to the floor's CPU per request, or a latency.
GOALS = {"accept": 2.0, "sold out": 0.3, "whole path": 6.0}
P99_GOAL_MS = 50.0


@dataclass
class Phase:
    name: str
    load: Load
    cpu_seconds: float
    answers: int

    @property
    def cpu_ms(self) -> float:
        return self.cpu_seconds * 1000 / self.answers if self.answers else float("nan")


def _measured(name: str, pids: list[int], run: Any, count: int) -> Phase:
    before = cpu_seconds(pids)
    load = run()
    return Phase(name, load, cpu_seconds(pids) - before, load.statuses[count])


def _drained(stack: OrdersStack, total: int, timeout: float = 300.0) -> float:
    """Wait until `total` orders are fulfilled; the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if stack.order_statuses().get("fulfilled", 0) >= total:
                return time.monotonic() - started
        except psycopg.OperationalError:
            pass  # a shared server out of connections for a moment: ask again
        time.sleep(0.25)
    raise RuntimeError(f"orders not fulfilled in {timeout:.0f} s: {stack.logs()}")


def _measure(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("TEST_DATABASE_SUFFIX", "_bench")
    paced = round(args.rate * args.paced_seconds)
    units = args.requests + paced
    print("==> starting the order path and the floor (untraced)", flush=True)
    env = {"OTEL_SDK_DISABLED": "true", "ORDERS_WORKERS": str(args.orders_workers)}
    with orders_stack(
        "bench", warehouse_capacity=8, warehouse_handling_ms=5, env=env
    ) as stack:
        stack.shop_stock_add(units)
        stack.orders_manage("sale", "open", "muskie-casting-rod", "--units", str(units))
        worker = stack.fulfillment_worker()
        with psycopg.connect(database_url(stack.databases["orders"])) as conn:
            conn.execute(floor_process.TABLES_SQL)
        with floor_process.floor_started(stack.env) as floor:
            closed = {"requests": args.requests, "concurrency": args.concurrency}
            print(f"==> floor: {args.requests} requests", flush=True)
            floor_phase = _measured(
                "floor",
                [floor.pid],
                lambda: load_closed(base=floor.url, path="/floor/", **closed),
                202,
            )
        orders = [stack.orders.pid]
        parts = {
            "orders": stack.orders.pid,
            "relay": stack.relay.pid,
            "orders-worker": stack.orders_worker.pid,
            "fulfillment-worker": worker.pid,
            "warehouse": stack.warehouse.pid,
        }
        base, api = stack.orders.url, "/api/orders/"
        print(f"==> accept: {args.requests} orders, then until fulfilled", flush=True)
        parts_before = {name: cpu_seconds([pid]) for name, pid in parts.items()}
        with profiles_recorded(parts, args.profile):
            accept = _measured(
                "accept",
                orders,
                lambda: load_closed(base=base, path=api, **closed),
                202,
            )
            drain = _drained(stack, args.requests)
        per_part = {
            name: (cpu_seconds([pid]) - parts_before[name]) * 1000 / accept.answers
            for name, pid in parts.items()
        }
        whole = Phase(
            "whole path",
            accept.load,
            sum(per_part.values()) * accept.answers / 1000,
            accept.answers,
        )
        print(f"==> open loop: {args.rate:.0f} orders/s for {args.paced_seconds:.0f} s")
        open_loop = load_paced(base=base, path=api, rate=args.rate, requests=paced)
        _drained(stack, args.requests + open_loop.statuses[202])
        print(f"==> sold out: {args.requests} requests", flush=True)
        sold_out = _measured(
            "sold out", orders, lambda: load_closed(base=base, path=api, **closed), 409
        )
        return {
            "phases": [floor_phase, accept, whole, sold_out],
            "open_loop": open_loop,
            "drain_seconds": drain,
            "whole_path_ms_per_order": {k: round(v, 3) for k, v in per_part.items()},
            "backlog": dict(stack.order_statuses()),
        }


def _verdicts(measured: dict[str, Any]) -> list[dict[str, Any]]:
    phases = {p.name: p for p in measured["phases"]}
    floor = phases["floor"].cpu_ms
    rows = []
    for phase in measured["phases"]:
        ratio = phase.cpu_ms / floor if floor else float("nan")
        goal = GOALS.get(phase.name)
        rows.append(
            {
                "name": phase.name,
                "answers": phase.answers,
                "statuses": {str(k): v for k, v in phase.load.statuses.items()},
                "cpu_ms_per_answer": round(phase.cpu_ms, 3),
                "ratio_to_floor": round(ratio, 2),
                "goal_ratio": goal,
                "pass": None if goal is None else ratio <= goal,
                "p50_ms": _round(phase.load.percentile(0.5)),
                "p99_ms": _round(phase.load.percentile(0.99)),
            }
        )
    loop: Load = measured["open_loop"]
    p99 = loop.percentile(0.99)
    rows.append(
        {
            "name": "open loop",
            "answers": loop.statuses[202],
            "statuses": {str(k): v for k, v in loop.statuses.items()},
            "p50_ms": _round(loop.percentile(0.5)),
            "p99_ms": _round(p99),
            "goal_p99_ms": P99_GOAL_MS,
            "pass": p99 is not None
            and p99 <= P99_GOAL_MS
            and set(loop.statuses) == {202},
        }
    )
    return rows


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def print_table(rows: list[dict[str, Any]]) -> None:
    head = f"{'':<11} {'answers':>8} {'cpu ms':>7} {'x floor':>8} {'goal':>7}"
    head += f" {'p50 ms':>7} {'p99 ms':>7}  verdict"
    print(head)
    print("-" * len(head))
    for row in rows:
        goal = row.get("goal_ratio")
        goal_text = f"<={goal}x" if goal else ""
        if "goal_p99_ms" in row:
            goal_text = f"p99<={row['goal_p99_ms']:.0f}"
        verdict = {True: "pass", False: "FAIL", None: ""}[row["pass"]]
        print(
            f"{row['name']:<11} {row['answers']:>8} "
            f"{row.get('cpu_ms_per_answer', float('nan')):>7.2f} "
            f"{row.get('ratio_to_floor', float('nan')):>8.2f} {goal_text:>7} "
            f"{row['p50_ms'] or float('nan'):>7.1f} "
            f"{row['p99_ms'] or float('nan'):>7.1f}  {verdict}"
        )


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate", type=float, default=150.0)
    parser.add_argument("--paced-seconds", type=float, default=10.0)
    parser.add_argument("--orders-workers", type=int, default=2)
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="record a py-spy flame graph of each process of the whole path in DIR",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    started = time.monotonic()
    measured = _measure(args)
    rows = _verdicts(measured)
    print()
    print_table(rows)
    print(
        "whole path, CPU ms per order: "
        + ", ".join(
            f"{k} {v:.2f}" for k, v in measured["whole_path_ms_per_order"].items()
        )
    )
    print(
        f"whole path drained {args.requests} orders in "
        f"{measured['drain_seconds']:.1f} s; orders at the end: {measured['backlog']}"
    )
    stamp = report_stamp()
    report = {
        "when": stamp,
        "machine": machine_describe(),
        "arguments": vars(args),
        "traced": False,
        "rows": rows,
        "drain_seconds": round(measured["drain_seconds"], 2),
        "whole_path_ms_per_order": measured["whole_path_ms_per_order"],
        "orders_at_end": measured["backlog"],
        "run_seconds": round(time.monotonic() - started, 1),
    }
    report_write("orders", stamp, report)
    return 0 if all(row["pass"] is not False for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
