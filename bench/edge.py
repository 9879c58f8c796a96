"""The edge router's overhead: straight to an origin, through the edge, through nginx.

    python -m bench.edge [--duration 8] [--workers 2] [--connections 1,64]
                         [--no-traced]

One run, one machine, the same fast origin (nginx `return 200` with a small body, so
the figures are about the proxies): wrk measures each target at each connection
count; then the table gives requests/s, p50 and p99, the edge's throughput as a share
of nginx's, and the latency each proxy adds at p50. nginx runs the config that
`python manage.py edge export nginx --profile legacy` writes for the same table.
The edge runs twice: untraced (`OTEL_SDK_DISABLED=true`, the proxy against the
proxy: the goals are checked on it) and traced as the demo runs it (every request a
server and a client span, exported to a temporary span store), unless `--no-traced`.
Writes `reports/bench-edge-<timestamp>.json`.

Goals (issue 5): added p50 at most 1 ms, throughput at least 50 % of nginx's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TypedDict

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports"
BODY = "hello from origin, a small product page body" + "." * 41 + "\n"
GOAL_ADDED_P50_MS = 1.0
GOAL_SHARE_OF_NGINX = 0.5

ORIGIN_CONF = """worker_processes 1;
pid nginx.pid;
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  server {{ listen 127.0.0.1:{port}; location / {{ return 200 "{body}"; }} }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, proc: subprocess.Popen[bytes], name: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited at start ({proc.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not answer on {url}")


@contextmanager
def process(
    name: str, cmd: list[str], ready: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(ready, proc, name)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def nginx(name: str, config: str, port: int) -> Iterator[subprocess.Popen[bytes]]:
    prefix = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    (prefix / "nginx.conf").write_text(config)
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    cmd = [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
    try:
        ready = f"http://127.0.0.1:{port}/"
        with process(name, [*cmd, "-g", "daemon off;"], ready) as proc:
            yield proc
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s)$", text)
    if not match:
        raise ValueError(f"unreadable wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


class WrkFigures(TypedDict):
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: float
    socket_errors: str


def _wrk_field(pattern: str, out: str) -> str:
    match = re.search(pattern, out, re.MULTILINE)
    if not match:
        raise ValueError(f"wrk printed no {pattern!r}:\n{out}")
    return match.group(1)


def wrk(url: str, connections: int, duration: float) -> WrkFigures:
    cmd = [
        "wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency",
        "--timeout", "5s", url,
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(_wrk_field(r"Requests/sec:\s+([\d.]+)", out))
    p50 = _wrk_field(r"^\s+50%\s+(\S+)", out)
    p99 = _wrk_field(r"^\s+99%\s+(\S+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "p50_ms": _ms(p50),
        "p99_ms": _ms(p99),
        "non_2xx": float(errors.group(1)) if errors else 0.0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
    }


def edge_env(origin_url: str) -> dict[str, str]:
    return {
        "OTEL_SDK_DISABLED": "true",
        "SHOP_URL": origin_url,
        "ORDERS_URL": origin_url,
        "EDGE_MODE_KEY": f"edge:bench:{uuid.uuid4().hex}:mode",
        "EDGE_DEFAULT_MODE": "legacy",
        "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="bench-edge-metrics-"),
        "LOG_LEVEL": "WARNING",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.edge", description=__doc__)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds, unmeasured")
    parser.add_argument("--workers", type=int, default=2, help="edge workers")
    parser.add_argument("--connections", default="1,64", help="comma-separated")
    parser.add_argument(
        "--traced",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure the edge with tracing on",
    )
    args = parser.parse_args(argv)
    connections = [int(c) for c in args.connections.split(",")]
    for tool in ("wrk", "nginx"):
        if not (shutil.which(tool) or Path(f"/usr/sbin/{tool}").exists()):
            print(f"{tool} is missing: `make edge-tools` installs it", file=sys.stderr)
            return 2

    sys.path.insert(0, str(ROOT))
    from edge_router.cli import export

    origin_port, edge_port, nginx_port = free_port(), free_port(), free_port()
    traced_port = free_port()
    origin_url = f"http://127.0.0.1:{origin_port}"
    env = edge_env(origin_url)
    traces = tempfile.mkdtemp(prefix="bench-edge-traces-")
    traced_env = {
        **env,
        "OTEL_SDK_DISABLED": "false",
        "OTEL_TRACES_EXPORTER": "",
        "TRACES_DIR": traces,
        "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="bench-edge-metrics-"),
    }
    nginx_conf = export("nginx", profile="legacy", listen=f"127.0.0.1:{nginx_port}",
                        env={**os.environ, **env})  # fmt: skip
    targets = {
        "origin": f"{origin_url}/shop/",
        "edge": f"http://127.0.0.1:{edge_port}/shop/",
        "nginx": f"http://127.0.0.1:{nginx_port}/shop/",
    }
    if args.traced:
        targets["edge_traced"] = f"http://127.0.0.1:{traced_port}/shop/"
    results: dict[str, dict[int, WrkFigures]] = {name: {} for name in targets}
    print(
        f"==> origin nginx :{origin_port}, edge :{edge_port} "
        f"({args.workers} workers), nginx (exported) :{nginx_port}",
        flush=True,
    )
    try:
        with ExitStack() as stack:
            body = BODY.replace("\n", "\\n")
            origin_conf = ORIGIN_CONF.format(port=origin_port, body=body)
            stack.enter_context(nginx("origin", origin_conf, origin_port))
            health = f"http://127.0.0.1:{edge_port}/_edge/healthz"
            edge_cmd = _edge_command(edge_port, args.workers)
            stack.enter_context(process("edge", edge_cmd, health, env))
            if args.traced:
                health = f"http://127.0.0.1:{traced_port}/_edge/healthz"
                traced_cmd = _edge_command(traced_port, args.workers)
                stack.enter_context(process("edge", traced_cmd, health, traced_env))
            stack.enter_context(nginx("nginx", nginx_conf, nginx_port))
            for count in connections:
                for name, url in targets.items():
                    wrk(url, count, args.warmup)
                    results[name][count] = figures = wrk(url, count, args.duration)
                    print(
                        f"    {name:<11} c{count:<3} {figures['rps']:>9.0f} req/s  "
                        f"p50 {figures['p50_ms']:.3f} ms  "
                        f"p99 {figures['p99_ms']:.3f} ms",
                        flush=True,
                    )
    finally:
        for folder in (env, traced_env):
            shutil.rmtree(folder["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
        shutil.rmtree(traces, ignore_errors=True)
    report = summarise(results, connections, args)
    print("load average (1, 5, 15 min): " + ", ".join(
        f"{x:.2f}" for x in os.getloadavg()))  # fmt: skip
    REPORTS.mkdir(exist_ok=True)
    stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    path = REPORTS / f"bench-edge-{stamp}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"report: {path.relative_to(ROOT)}")
    return 0


def _edge_command(port: int, workers: int) -> list[str]:
    """The edge as the Procfile runs it (its access log to /dev/null, like nginx's)."""
    return [
        sys.executable, "-m", "uvicorn", "edge_router.app:app",
        "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--loop", "uvloop", "--http", "httptools",
        "--lifespan", "on", "--no-access-log", "--no-proxy-headers",
    ]  # fmt: skip


def summarise(
    results: dict[str, dict[int, WrkFigures]],
    connections: list[int],
    args: argparse.Namespace,
) -> dict[str, object]:
    print()
    print(f"{'target':<12} {'conns':>5} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
    print("-" * 47)
    for count in connections:
        for name in results:
            f = results[name][count]
            print(f"{name:<12} {count:>5} {f['rps']:>10.0f} {f['p50_ms']:>8.3f} "
                  f"{f['p99_ms']:>8.3f}")  # fmt: skip
    print()
    ratios: dict[str, dict[str, float]] = {}
    for count in connections:
        origin, edge, ngx = (results[n][count] for n in ("origin", "edge", "nginx"))
        ratios[f"c{count}"] = {
            "edge_share_of_nginx_rps": edge["rps"] / ngx["rps"],
            "edge_added_p50_ms": edge["p50_ms"] - origin["p50_ms"],
            "nginx_added_p50_ms": ngx["p50_ms"] - origin["p50_ms"],
            "edge_added_p99_ms": edge["p99_ms"] - origin["p99_ms"],
            "nginx_added_p99_ms": ngx["p99_ms"] - origin["p99_ms"],
        }
        if "edge_traced" in results:
            traced = results["edge_traced"][count]
            ratios[f"c{count}"] |= {
                "traced_edge_share_of_nginx_rps": traced["rps"] / ngx["rps"],
                "traced_edge_added_p50_ms": traced["p50_ms"] - origin["p50_ms"],
            }
        r = ratios[f"c{count}"]
        print(
            f"c{count}: edge/nginx rps {100 * r['edge_share_of_nginx_rps']:.0f} %, "
            f"added p50 edge {r['edge_added_p50_ms']:.3f} ms vs nginx "
            f"{r['nginx_added_p50_ms']:.3f} ms, added p99 edge "
            f"{r['edge_added_p99_ms']:.3f} ms vs nginx "
            f"{r['nginx_added_p99_ms']:.3f} ms"
        )
        if "traced_edge_share_of_nginx_rps" in r:
            print(
                f"c{count}: traced edge/nginx rps "
                f"{100 * r['traced_edge_share_of_nginx_rps']:.0f} %, added p50 "
                f"traced edge {r['traced_edge_added_p50_ms']:.3f} ms"
            )
    low, high = f"c{min(connections)}", f"c{max(connections)}"
    added = ratios[low]["edge_added_p50_ms"]
    share = ratios[high]["edge_share_of_nginx_rps"]
    goals = {
        "added_p50_ms": {"goal": GOAL_ADDED_P50_MS, "measured": added,
                         "met": added <= GOAL_ADDED_P50_MS, "at": low},
        "share_of_nginx_rps": {"goal": GOAL_SHARE_OF_NGINX, "measured": share,
                               "met": share >= GOAL_SHARE_OF_NGINX, "at": high},
    }  # fmt: skip
    print()
    for name, goal in goals.items():
        verdict = "met" if goal["met"] else "NOT met"
        print(
            f"goal {name} ({goal['at']}): {goal['measured']:.3f} "
            f"vs {goal['goal']} -> {verdict}"
        )
    return {
        "benchmark": "edge",
        "origin": "nginx return 200 (worker_processes 1)",
        "edge": f"uvicorn edge_router.app:app, {args.workers} workers, "
        "uvloop, httptools; edge: tracing off, edge_traced: on",
        "nginx": "python manage.py edge export nginx --profile legacy "
        "(worker_processes auto)",
        "load": f"wrk -t1, {args.duration:g}s per run after {args.warmup:g}s warm-up",
        "results": {n: {f"c{c}": v for c, v in r.items()} for n, r in results.items()},
        "ratios": ratios,
        "goals": goals,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            # Other work on the machine moves the figures: report it with them.
            "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        },
    }


if __name__ == "__main__":
    raise SystemExit(main())
