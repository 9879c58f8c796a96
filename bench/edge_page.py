"""The Python edge's CPU per request on a real page against its small-origin figure,
at a sale's request rates, open loop.

    python -m bench.edge_page --real-page URL [--rates 25,100]
        [--connections new,keep-alive] [--seconds 6] [--rounds 3] [--workers 2]
        [--engine python|nginx] [--access-log]

Two edges of the given engine (untraced; no access log, as bench.edge runs them,
unless `--access-log`): one
in front of bench.edge's small origin (nginx `return 200`, 86 bytes), one in front of
the running stack's shop whose page `--real-page` names (the Tourney page of a
`make demo`: `http://127.0.0.1:8001/shop/rods/tourney-casting-rod/`). Each is asked
for its page at each rate, open loop (bench/edge_open_loop.py), on a new connection
per request and on kept-alive ones, `--rounds` times, targets alternated. Reported per
request: the edge process tree's CPU (/proc utime+stime) with and without its idle
share (what it spends a second asked nothing, measured before the runs), the median
and range over the rounds, and the real page's ratio to the small origin's.
Writes `reports/bench-edge-page-<timestamp>.json`.
"""

from __future__ import annotations

import argparse
from contextlib import ExitStack
from urllib.parse import urlsplit

from bench.edge import BODY, ORIGIN_CONF, edge_env, edge_start
from bench.edge_open_loop import CONNECTIONS, Plan, page_compare
from bench.reports import machine_describe, report_stamp, report_write
from common.harness.nginx import nginx_process
from common.harness.processes import free_port


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.edge_page", description=__doc__)
    parser.add_argument("--real-page", required=True, help="a running shop's page")
    parser.add_argument("--rates", default="25,100", help="requests a second")
    parser.add_argument("--connections", default=",".join(CONNECTIONS))
    parser.add_argument("--seconds", type=float, default=6.0, help="per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="edge workers")
    parser.add_argument("--engine", default="python", choices=("python", "nginx"))
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="the edges write their JSON access log, as the demo and a sale run them",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    page = urlsplit(args.real_page)
    origin_port = free_port()
    plan = Plan(
        rates=tuple(float(r) for r in args.rates.split(",")),
        connections=tuple(args.connections.split(",")),
        seconds=args.seconds,
        rounds=args.rounds,
    )
    with ExitStack() as stack:
        body = BODY.replace("\n", "\\n")
        conf = ORIGIN_CONF.format(port=origin_port, body=body)
        stack.enter_context(nginx_process("origin", conf, origin_port))
        log = {"EDGE_ACCESS_LOG": "1" if args.access_log else "0"}
        small_env = edge_env(
            f"http://127.0.0.1:{origin_port}", EDGE_ENGINE=args.engine, **log
        )
        shop = f"{page.scheme}://{page.netloc}"
        real_env = edge_env(shop, EDGE_ENGINE=args.engine, **log)
        small = stack.enter_context(edge_start(free_port(), args.workers, small_env))
        real = stack.enter_context(edge_start(free_port(), args.workers, real_env))
        targets = {
            "small": (small.url + "/shop/", small),
            "real": (real.url + page.path, real),
        }
        compared = page_compare(targets, plan)
    report = {
        "engine": args.engine,
        "real_page": args.real_page,
        "access_log": args.access_log,
        **compared,
        "machine": machine_describe(),
    }
    report_write("edge-page", report_stamp(), report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
