"""What a Muskie page view costs: served by the edge from its static origin (the
sale's minisite), or rendered by the orders service (Django) behind the edge.

    python -m common.devstack run python -m bench.static_page
        [--seconds 6] [--connections 16] [--repeat 3] [--workers 1]

One order path (common/harness/orders_stack.py) with an open sale, whose minisite
`sale open` builds; two untraced edges in strangler mode in front of it: one with the
project's route table (the page from the static origin), one with the same table
without its static behaviours (the page proxied to the orders service, as before).
wrk asks each for the page for `--seconds` (closed loop, `--connections`), the two
alternating, `--repeat` times; the CPU seconds (user + system) of each edge's
process tree and of the orders service's are read around every run. Reported per
request: the edge's CPU, the orders service's, requests/s; the median and the range
over the repeats. Writes `reports/bench-static-page-<timestamp>.json`.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from bench.cpu import cpu_seconds
from bench.edge import wrk
from common.harness.orders_stack import orders_stack
from common.harness.processes import Process, free_port
from common.harness.services import procfile_process

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports"
ROUTES = ROOT / "edge_router" / "routes.toml"
PAGE = "/shop/rods/muskie-casting-rod/"
# A strangler behaviour whose origin is the minisite's directory.
_STATIC_BEHAVIOUR = re.compile(
    r'\[\[profiles\.strangler\]\]\nname = "[a-z-]+"\n(?:[a-z_]+ = .*\n)*?'
    r'origin = "muskie-site"\n'
)


def routes_without_static(directory: Path) -> Path:
    """The project's table with the page's static behaviours taken out: the page
    then goes to the orders service, as before the minisite."""
    text, count = _STATIC_BEHAVIOUR.subn("", ROUTES.read_text())
    if count != 2:
        raise RuntimeError(f"expected 2 static behaviours in {ROUTES}, found {count}")
    path = directory / "routes-django-page.toml"
    path.write_text(text)
    return path


def _edge(stack: ExitStack, env: dict[str, str], **extra: str) -> Process:
    port = free_port()
    edge_env = {
        **env,
        **extra,
        "OTEL_SDK_DISABLED": "true",
        "EDGE_MODE_KEY": f"edge:bench:{uuid.uuid4().hex}:mode",
        "EDGE_DEFAULT_MODE": "strangler",
        "EDGE_ACCESS_LOG": "0",
        "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="bench-static-metrics-"),
        "LOG_LEVEL": "WARNING",
    }
    return stack.enter_context(procfile_process("edge", env=edge_env, port=port))


def _run(edge: Process, orders: Process, args: argparse.Namespace) -> dict[str, float]:
    url = edge.url + PAGE
    wrk(url, args.connections, 1.0)  # warm: caches, connections
    before = cpu_seconds([edge.pid]), cpu_seconds([orders.pid])
    figures = wrk(url, args.connections, args.seconds)
    after = cpu_seconds([edge.pid]), cpu_seconds([orders.pid])
    requests = figures["rps"] * args.seconds
    return {
        "rps": figures["rps"],
        "p50_ms": figures["p50_ms"],
        "p99_ms": figures["p99_ms"],
        "non_2xx": figures["non_2xx"],
        "edge_cpu_ms_per_request": (after[0] - before[0]) * 1000 / requests,
        "orders_cpu_ms_per_request": (after[1] - before[1]) * 1000 / requests,
    }


def _summary(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    return {
        key: {
            "median": statistics.median(r[key] for r in runs),
            "min": min(r[key] for r in runs),
            "max": max(r[key] for r in runs),
        }
        for key in runs[0]
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.static_page", description=__doc__)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="edge workers")
    args = parser.parse_args(argv)
    runs: dict[str, list[dict[str, float]]] = {"static": [], "django": []}
    with ExitStack() as stack, tempfile.TemporaryDirectory() as scratch:
        orders = stack.enter_context(orders_stack("bench-static"))
        orders.sale_reopen(50)
        workers = str(args.workers)
        edges = {
            "static": _edge(stack, orders.env, EDGE_WORKERS=workers,
                            SHOP_URL=orders.shop.url, ORDERS_URL=orders.orders.url),
            "django": _edge(stack, orders.env, EDGE_WORKERS=workers,
                            SHOP_URL=orders.shop.url, ORDERS_URL=orders.orders.url,
                            EDGE_ROUTES_FILE=str(routes_without_static(Path(scratch)))),
        }  # fmt: skip
        for round_ in range(args.repeat):
            for name, edge in edges.items():
                figures = _run(edge, orders.orders, args)
                runs[name].append(figures)
                print(
                    f"  round {round_ + 1} {name:<6} {figures['rps']:>7.0f} req/s  "
                    f"edge {figures['edge_cpu_ms_per_request']:.3f} ms CPU/req  "
                    f"orders {figures['orders_cpu_ms_per_request']:.3f} ms CPU/req  "
                    f"non-2xx {figures['non_2xx']:.0f}",
                    flush=True,
                )
    summary = {name: _summary(r) for name, r in runs.items()}
    for name, stats in summary.items():
        on_edge = stats["edge_cpu_ms_per_request"]
        on_orders = stats["orders_cpu_ms_per_request"]
        print(
            f"{name:<6} edge CPU/req {on_edge['median']:.3f} ms "
            f"({on_edge['min']:.3f}-{on_edge['max']:.3f}), orders CPU/req "
            f"{on_orders['median']:.3f} ms ({on_orders['min']:.3f}-"
            f"{on_orders['max']:.3f}), {stats['rps']['median']:.0f} req/s"
        )
    REPORTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out = REPORTS / f"bench-static-page-{stamp}.json"
    out.write_text(
        json.dumps({"args": vars(args), "runs": runs, "summary": summary}, indent=2)
    )
    print(f"wrote {out}")
    return 0 if all(r["non_2xx"] == 0 for rs in runs.values() for r in rs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
