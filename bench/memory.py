"""Resident memory of the whole demo stack, idle and at the peak of a sale.

    python -m bench.memory [--settle 5] [--timeout 120] [--goal-mib 1024] [--keep]
                           [--sale none|legacy|strangler|both] [--every 2]

Starts `python -m common.devstack demo` with embedded PostgreSQL and Redis in a
temporary data directory and on free ports, waits until the shop and the warehouse
answer, lets the stack settle and sums the memory of every process of it (idle).
Then runs `python -m loadtest run --no-start --mode strangler` against that same stack
and samples it every `--every` seconds: the sample with the largest PSS is the
peak. Writes `reports/bench-memory-<timestamp>.json` and stops the stack again.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import psutil

from bench.memory_groups import MIB, Group, collect, mib, print_table
from bench.memory_stack import SalePeak, demo_stack, demo_start, sale_peak, stop_stack
from common.harness.processes import free_ports

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports"


def write_report(report: dict[str, object]) -> Path:
    REPORTS.mkdir(exist_ok=True)
    stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    path = REPORTS / f"bench-memory-{stamp}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settle", type=float, default=5.0, help="seconds idle first")
    parser.add_argument("--timeout", type=float, default=120.0, help="start-up limit")
    parser.add_argument("--goal-mib", type=float, default=1024.0, help="peak budget")
    parser.add_argument("--keep", action="store_true", help="keep data dir and log")
    parser.add_argument(
        "--sale",
        choices=["none", "legacy", "strangler", "both"],
        default="strangler",
        help="after the idle figure, run `python -m loadtest run` in this mode "
        "against the same stack and report the peak (none: idle only)",
    )
    parser.add_argument(
        "--every", type=float, default=2.0, help="seconds between samples in the sale"
    )
    return parser.parse_args(argv)


def _stack_env(ports: dict[str, int], data_dir: Path) -> dict[str, str]:
    """Ours without the backing services' URLs: the launcher starts embedded ones."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    return env | {
        "DEVSTACK_EMBEDDED": "1",
        "DEVSTACK_DATA_DIR": str(data_dir),
        "EMBEDDED_REDIS_PORT": str(ports["redis"]),
        "SHOP_PORT": str(ports["shop"]),
        "WAREHOUSE_PORT": str(ports["warehouse"]),
        "WAREHOUSE_URL": f"http://127.0.0.1:{ports['warehouse']}",
        "EDGE_PORT": str(ports["edge"]),
        "ORDERS_PORT": str(ports["orders"]),
        "ORDERS_URL": f"http://127.0.0.1:{ports['orders']}",
        "SHOP_URL": f"http://127.0.0.1:{ports['shop']}",
        "DJANGO_DEBUG": "0",
    }


def _ready_urls(ports: dict[str, int]) -> dict[str, str]:
    return {
        "shop": f"http://127.0.0.1:{ports['shop']}/shop/",
        "warehouse": f"http://127.0.0.1:{ports['warehouse']}/healthz",
        "edge": f"http://127.0.0.1:{ports['edge']}/_edge/healthz",
        "orders": f"http://127.0.0.1:{ports['orders']}/readyz",
    }


def _measured(
    args: argparse.Namespace, ports: dict[str, int], workdir: Path
) -> tuple[float, list[Group], SalePeak | None]:
    """Start the stack, measure it idle (and at a sale's peak), stop it."""
    data_dir = workdir / "data"
    pgdata = data_dir / "pg"
    log_path = workdir / "devstack.log"
    env = _stack_env(ports, data_dir)
    print(f"==> python -m common.devstack demo  (embedded servers in {data_dir})")
    print(
        f"    shop :{ports['shop']}  orders :{ports['orders']}  warehouse "
        f":{ports['warehouse']}  edge :{ports['edge']}  redis :{ports['redis']}"
    )
    print(f"    log: {log_path}", flush=True)
    stack = demo_stack(env, _ready_urls(ports), log_path)
    peak = None
    try:
        startup = demo_start(stack, args.timeout)
        print(f"==> settling for {args.settle:.0f}s", flush=True)
        time.sleep(args.settle)
        groups = collect(stack.pid, pgdata, ports["redis"])
        if args.sale != "none":
            # The servers the launcher started (common/devstack.py's URLs).
            pg_url = "postgresql://postgres:@" + str(pgdata).replace("/", "%2F")
            redis_url = f"redis://127.0.0.1:{ports['redis']}/0"
            sale_env = env | {"DATABASE_URL": pg_url + "/postgres"}
            sale_env["REDIS_URL"] = redis_url
            peak = sale_peak(
                args.sale,
                env=sale_env,
                workdir=workdir,
                every=args.every,
                sample=lambda: collect(stack.pid, pgdata, ports["redis"]),
            )
    finally:
        print("==> stopping the stack (SIGINT to its process group)", flush=True)
        for note in stop_stack(stack, pgdata, ports["redis"]):
            print(f"    {note}")
    return startup, groups, peak


def _group_rows(groups: list[Group]) -> list[dict[str, object]]:
    return [
        {
            "name": g.name,
            "rss_bytes": g.total("rss"),
            "pss_bytes": g.total("pss"),
            "uss_bytes": g.total("uss"),
            "processes": [asdict(p) for p in g.processes],
        }
        for g in groups
    ]


def _peak_report(peak: SalePeak | None, mode: str) -> dict[str, object] | None:
    if peak is None:
        return None
    return {
        "mode": mode,
        "samples": peak.samples,
        "at_seconds": round(peak.at_seconds, 1),
        "sale_exit_code": peak.exit_code,
        "processes": sum(len(g.processes) for g in peak.groups),
        "rss_bytes": sum(g.total("rss") or 0 for g in peak.groups),
        "pss_bytes": sum(g.total("pss") or 0 for g in peak.groups),
        "groups": [
            {"name": g.name, "rss_bytes": g.total("rss"), "pss_bytes": g.total("pss")}
            for g in peak.groups
        ],
    }


def _idle_print(groups: list[Group], goal: int) -> Group:
    everything = Group("total", [p for g in groups for p in g.processes])
    print()
    print_table(groups, everything)
    rss, pss = everything.total("rss") or 0, everything.total("pss")
    print()
    print(f"idle stack: {mib(rss)} MiB RSS (sum; shared pages counted per process)")
    if pss is not None:
        print(f"            {mib(pss)} MiB PSS (shared pages split between sharers)")
    print(
        f"goal: {mib(goal)} MiB at the peak of a sale; idle RSS uses "
        f"{100 * rss / goal:.0f}% of it"
    )
    return everything


def _peak_print(peak: SalePeak, mode: str, goal: int) -> None:
    peak_all = Group("total", [p for g in peak.groups for p in g.processes])
    peak_rss, peak_pss = peak_all.total("rss") or 0, peak_all.total("pss")
    print()
    print(
        f"at the peak of the sale ({mode}; {peak.samples} samples, the "
        f"largest PSS taken, {peak.at_seconds:.0f}s into the run):"
    )
    print_table(peak.groups, peak_all)
    print()
    print(f"sale peak:  {mib(peak_rss)} MiB RSS (sum)")
    if peak_pss is not None:
        verdict = "within" if peak_pss <= goal else "ABOVE"
        print(f"            {mib(peak_pss)} MiB PSS -> {verdict} the goal")
    print(f"            the sale's exit code: {peak.exit_code}")


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    # pgserver runs PostgreSQL as its own user when we are root: let it in.
    workdir.chmod(0o755)
    names = ("shop", "warehouse", "redis", "edge", "orders")
    ports = dict(zip(names, free_ports(5), strict=True))
    try:
        startup, groups, peak = _measured(args, ports, workdir)
    except RuntimeError as error:
        print(f"!! {error}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    goal = int(args.goal_mib * MIB)
    everything = _idle_print(groups, goal)
    if peak is not None:
        _peak_print(peak, args.sale, goal)
    report = {
        "benchmark": "memory",
        "state": "idle" if peak is None else f"idle and sale ({args.sale})",
        "command": "python -m common.devstack demo (DEVSTACK_EMBEDDED=1)",
        "settle_seconds": args.settle,
        "startup_seconds": round(startup, 2),
        "ports": {
            name: ports[name]
            for name in ("shop", "warehouse", "edge", "orders", "redis")
        },
        "goal_bytes": goal,
        "total": {
            "processes": len(everything.processes),
            "rss_bytes": everything.total("rss") or 0,
            "pss_bytes": everything.total("pss"),
            "uss_bytes": everything.total("uss"),
        },
        "groups": _group_rows(groups),
        "sale_peak": _peak_report(peak, args.sale),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "memory_bytes": psutil.virtual_memory().total,
        },
    }
    print(f"report: {write_report(report).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
