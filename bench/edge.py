"""The edge router's overhead, both engines: straight to an origin, through the Python
edge, through the nginx engine, through a plain nginx; and a real page.

    python -m bench.edge [--duration 8] [--workers 2] [--connections 1,64]
                         [--no-traced] [--real-page URL] [--real-connections 4]

One run, one machine, the same fast origin (nginx `return 200` with a small body, so
the figures are about the proxies): wrk measures each target at each connection
count, and the CPU each proxy's process tree spent per request (/proc utime+stime,
psutil). Targets: `plain_nginx` (the baseline: nginx with a bare `proxy_pass`,
keep-alive upstream, no log), `nginx_engine` (`EDGE_ENGINE=nginx`: nginx driven by
its control plane from the route table, with its JSON access log and metrics, as the
demo runs it), `edge` (the Python engine, untraced) and `edge_traced` (traced as the
demo runs it: the route table's default ratio, one request in twenty a server and a
client span exported to a temporary store, the rest unsampled) unless `--no-traced`.

`--real-page URL` also measures a real page of a running stack's shop (say
`http://127.0.0.1:8001/shop/rods/tourney-casting-rod/` of `make demo`): straight,
through a Python edge (untraced) and through the nginx engine, both in front of that
shop, at `--real-connections` (4: a sale's rate on this page is what the shop serves);
then the Python edge on it and on the small origin at the same open-loop rates
(`--real-rates 25,100` a second, new connections and kept-alive ones,
`--real-seconds` each): the real page's CPU per request over the small origin's is
the goal's ratio (bench/edge_open_loop.py).
Goals and ratios: bench/edge_report.py. Writes `reports/bench-edge-<timestamp>.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.cpu import cpu_seconds
from bench.edge_open_loop import Plan, page_compare
from bench.edge_report import Results, summarise
from common.harness.nginx import nginx_process
from common.harness.processes import Process, free_port
from common.harness.services import procfile_process

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports"
BODY = "hello from origin, a small product page body" + "." * 41 + "\n"

ORIGIN_CONF = """worker_processes 1;
pid nginx.pid;
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  server {{ listen 127.0.0.1:{port}; location / {{ return 200 "{body}"; }} }}
}}
"""
# The baseline: what anyone would write to put nginx in front of the origin.
PLAIN_CONF = """worker_processes {workers};
pid nginx.pid;
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  upstream origin {{ server {origin}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }}
  }}
}}
"""


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s)$", text)
    if not match:
        raise ValueError(f"unreadable wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(url: str, connections: int, duration: float) -> dict[str, float]:
    cmd = [
        "wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency",
        "--timeout", "5s", url,
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE).group(1)  # type: ignore[union-attr]
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE).group(1)  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "requests": float(total),
        "p50_ms": _ms(p50),
        "p99_ms": _ms(p99),
        "non_2xx": float(errors.group(1)) if errors else 0.0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",  # type: ignore[dict-item]
    }


def edge_env(origin_url: str, **extra: str) -> dict[str, str]:
    return {
        "OTEL_SDK_DISABLED": "true",
        "SHOP_URL": origin_url,
        "ORDERS_URL": origin_url,
        "EDGE_MODE_KEY": f"edge:bench:{uuid.uuid4().hex}:mode",
        "EDGE_DEFAULT_MODE": "legacy",
        "EDGE_ADMIN_PORT": str(free_port()),
        "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="bench-edge-metrics-"),
        "LOG_LEVEL": "WARNING",
        # Proxy against proxy: no JSON access log, as the plain nginx has none (the
        # nginx engine still counts its metrics from its own short log).
        "EDGE_ACCESS_LOG": "0",
        **extra,
    }


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.edge", description=__doc__)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds, unmeasured")
    parser.add_argument("--workers", type=int, default=2, help="edge workers")
    parser.add_argument("--connections", default="1,64", help="comma-separated")
    parser.add_argument(
        "--traced",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure the Python edge with tracing on",
    )
    parser.add_argument("--real-page", help="a page of a running stack's shop")
    parser.add_argument("--real-connections", type=int, default=4)
    parser.add_argument(
        "--real-rates",
        default="25,100",
        help="open-loop rates (a second) for the real page and the small origin",
    )
    parser.add_argument("--real-seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3, help="medians of N rounds")
    return parser.parse_args(argv)


@dataclass
class Target:
    url: str
    process: Process | None = None  # whose process tree's CPU is counted


def edge_start(port: int, workers: int, env: dict[str, str]) -> Process:
    """The Procfile's edge line on `port` (the engine from EDGE_ENGINE in `env`)."""
    return procfile_process(
        "edge", env={**env, "EDGE_WORKERS": str(workers)}, port=port
    )


@contextmanager
def _targets_running(
    args: argparse.Namespace, envs: dict[str, dict[str, str]], origin_port: int
) -> Iterator[dict[str, Target]]:
    """Every target, started; {name: Target} until the block ends."""
    page = "/shop/"
    plain_port = free_port()
    body = BODY.replace("\n", "\\n")
    origin_conf = ORIGIN_CONF.format(port=origin_port, body=body)
    plain_conf = PLAIN_CONF.format(
        workers=args.workers, origin=f"127.0.0.1:{origin_port}", port=plain_port
    )
    with ExitStack() as stack:
        enter = stack.enter_context
        enter(nginx_process("origin", origin_conf, origin_port))
        targets = {
            "origin": Target(f"http://127.0.0.1:{origin_port}{page}"),
            "plain_nginx": Target(
                f"http://127.0.0.1:{plain_port}{page}",
                enter(nginx_process("plain", plain_conf, plain_port)),
            ),
        }
        for name, env in envs.items():
            edge = enter(edge_start(free_port(), args.workers, env))
            url = args.real_page if name.startswith("real_") else page
            targets[name] = Target(edge.url + urlsplit(url).path, edge)
        if args.real_page:
            targets["real_origin"] = Target(args.real_page)
        yield targets


def _measure_one(target: Target, count: int, duration: float) -> dict[str, float]:
    pids = [target.process.pid] if target.process else []
    before = cpu_seconds(pids)
    figures = wrk(target.url, count, duration)
    spent = cpu_seconds(pids) - before
    if pids and figures["requests"]:
        figures["cpu_us_per_request"] = spent / figures["requests"] * 1e6
    return figures


def _measure(
    args: argparse.Namespace, targets: dict[str, Target], connections: list[int]
) -> Results:
    """Every target at every count, target after target, `--rounds` times over (the
    machine's other work then weighs on each alike); medians, with the spread."""
    rounds: dict[str, dict[int, list[dict[str, float]]]] = {n: {} for n in targets}
    for number in range(1, args.rounds + 1):
        for count in dict.fromkeys([*connections, args.real_connections]):
            for name, target in targets.items():
                real = name.startswith("real_")
                if count not in ([args.real_connections] if real else connections):
                    continue
                wrk(target.url, count, args.warmup)
                f = _measure_one(target, count, args.duration)
                rounds[name].setdefault(count, []).append(f)
                cpu = f.get("cpu_us_per_request")
                print(
                    f"    round {number} {name:<13} c{count:<3} {f['rps']:>9.0f} "
                    f"req/s  p50 {f['p50_ms']:.3f} ms  p99 {f['p99_ms']:.3f} ms"
                    + (f"  CPU {cpu:.0f} us/req" if cpu is not None else ""),
                    flush=True,
                )
    return {
        name: {count: _median(runs) for count, runs in by_count.items()}
        for name, by_count in rounds.items()
    }


def _at_rates(args: argparse.Namespace, targets: dict[str, Target]) -> dict[str, Any]:
    """The Python edge on the real page and on the small origin at the same request
    rates, open loop (bench/edge_open_loop.py): the CPU per request the goal compares.
    wrk's closed loop cannot: it asks the small origin 10-50x as often as a shop can
    answer, and a request's CPU falls with the rate (per-wake-up and per-second costs
    spread over more requests)."""
    pair = {"small": targets["edge"], "real": targets["real_edge"]}
    plan = Plan(
        rates=tuple(float(r) for r in args.real_rates.split(",")),
        seconds=args.real_seconds,
        rounds=args.rounds,
    )
    return page_compare(
        {name: (t.url, t.process) for name, t in pair.items() if t.process}, plan
    )


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in ("rps", "p50_ms", "p99_ms", "cpu_us_per_request", "non_2xx"):
        values = [run[key] for run in runs if key in run]
        if values:
            out[key] = statistics.median(values)
            out[f"{key}_min"], out[f"{key}_max"] = min(values), max(values)
    return out


def _envs(
    args: argparse.Namespace, traces: str, origin: str
) -> dict[str, dict[str, str]]:
    """The environment of each edge the run starts."""
    envs = {
        "edge": edge_env(origin, EDGE_ENGINE="python"),
        "nginx_engine": edge_env(origin, EDGE_ENGINE="nginx"),
    }
    if args.traced:
        envs["edge_traced"] = edge_env(
            origin, EDGE_ENGINE="python", OTEL_SDK_DISABLED="false",
            OTEL_TRACES_EXPORTER="", TRACES_DIR=traces,
        )  # fmt: skip
    if args.real_page:
        parts = urlsplit(args.real_page)
        shop = f"{parts.scheme}://{parts.netloc}"
        envs["real_edge"] = edge_env(shop, EDGE_ENGINE="python")
        envs["real_engine"] = edge_env(shop, EDGE_ENGINE="nginx")
    return envs


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    connections = [int(c) for c in args.connections.split(",")]
    for tool in ("wrk", "nginx"):
        if not (shutil.which(tool) or Path(f"/usr/sbin/{tool}").exists()):
            print(f"{tool} is missing: `make edge-tools` installs it", file=sys.stderr)
            return 2
    traces = tempfile.mkdtemp(prefix="bench-edge-traces-")
    origin_port = free_port()
    envs = _envs(args, traces, f"http://127.0.0.1:{origin_port}")
    try:
        with _targets_running(args, envs, origin_port) as targets:
            print("==> " + ", ".join(f"{n} {t.url}" for n, t in targets.items()))
            results = _measure(args, targets, connections)
            at_rates = _at_rates(args, targets) if args.real_page else None
    finally:
        for env in envs.values():
            shutil.rmtree(env["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
        shutil.rmtree(traces, ignore_errors=True)
    report = summarise(results, connections, _described(args), at_rates)
    print("load average (1, 5, 15 min): " + ", ".join(
        f"{x:.2f}" for x in os.getloadavg()))  # fmt: skip
    REPORTS.mkdir(exist_ok=True)
    stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    path = REPORTS / f"bench-edge-{stamp}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"report: {path.relative_to(ROOT)}")
    return 0


def _described(args: argparse.Namespace) -> dict[str, str]:
    return {
        "origin": "nginx return 200 (worker_processes 1)",
        "plain_nginx": f"nginx proxy_pass, keepalive 64, no log, {args.workers} "
        "workers",
        "nginx_engine": f"EDGE_ENGINE=nginx, {args.workers} workers, access log and "
        "metrics on",
        "edge": f"EDGE_ENGINE=python (uvicorn, uvloop, httptools), {args.workers} "
        "workers; edge: tracing off, edge_traced: on at the table's default ratio",
        "real_page": args.real_page or "not measured",
        "load": f"wrk -t1, {args.duration:g}s per run after {args.warmup:g}s warm-up, "
        f"medians of {args.rounds} rounds (min/max beside)",
    }


if __name__ == "__main__":
    raise SystemExit(main())
