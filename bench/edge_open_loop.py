"""A page at a fixed request rate, open loop, and what the server in front spent on it.

`bench.edge --real-page URL --real-rates 25,100` measures the real page as a sale
asks for it: each request sent when it is due (never waiting for the one before),
either on a new connection each (`new`: as the sale's buyers connect, one address
each) or on kept-alive connections (`keep-alive`: as the watcher's pool does). wrk's
closed loop at a few connections asks as fast as the shop answers, which is not the
rate a sale has; CPU per request moves with the rate (timers, wake-ups, a pool's
connections idling out), so the rate is fixed here.

The client is raw asyncio streams sending a browser's headers: its own CPU is not
counted, only the server's process tree's (/proc utime+stime, bench/cpu.py).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bench.cpu import cpu_seconds, cpu_split
from common.harness.processes import Process

CONNECTIONS = ("new", "keep-alive")
# What a browser sends for a product page (the cookie: a visitor who has been here).
BROWSER_HEADERS = (
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 "
    "Firefox/128.0\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: en-GB,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate\r\n"
    "Cookie: edge_visitor=0123456789abcdef0123456789abcdef; sessionid=bench\r\n"
)


@dataclass
class Tally:
    """What the run got back."""

    sent: int = 0
    ok: int = 0
    failed: int = 0
    # Why they failed: the status, or the client's error.
    failures: Counter[str] = field(default_factory=Counter)
    bytes: int = 0
    latencies_ms: list[float] = field(default_factory=list)


@dataclass
class _Pool:
    """Idle kept-alive connections (keep-alive), or none kept (new)."""

    keep: bool
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = field(
        default_factory=list
    )


async def _answer(reader: asyncio.StreamReader) -> tuple[int, int, bool]:
    """(status, body bytes, whether the server keeps the connection) of one answer
    with a Content-Length (what the edge sends for a page this size)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    fields = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines[1:] if line)
    }
    length = int(fields.get("content-length", "0"))
    await reader.readexactly(length)
    return status, length, fields.get("connection", "").lower() != "close"


async def _one(host: str, port: int, request: bytes, pool: _Pool, tally: Tally) -> None:
    began = time.perf_counter()
    tally.sent += 1
    try:
        if pool.idle:
            reader, writer = pool.idle.pop()
        else:
            reader, writer = await asyncio.open_connection(host, port)
        writer.write(request)
        status, length, alive = await asyncio.wait_for(_answer(reader), 10)
    except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as error:
        tally.failed += 1
        tally.failures[type(error).__name__] += 1
        return
    tally.latencies_ms.append((time.perf_counter() - began) * 1000)
    tally.bytes += length
    if status < 400:
        tally.ok += 1
    else:
        tally.failed += 1
        tally.failures[str(status)] += 1
    if pool.keep and alive:
        pool.idle.append((reader, writer))
    else:
        writer.close()


async def _run(url: str, rate: float, seconds: float, connections: str) -> Tally:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    keep = connections == "keep-alive"
    request = (
        f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        + BROWSER_HEADERS
        + ("" if keep else "Connection: close\r\n")
        + "\r\n"
    ).encode()
    pool, tally, tasks = _Pool(keep), Tally(), set()
    loop = asyncio.get_running_loop()
    start = loop.time()
    for n in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, start + n / rate - loop.time()))
        task = asyncio.create_task(_one(host, port, request, pool, tally))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=15)
    for _, writer in pool.idle:
        writer.close()
    return tally


def open_loop(
    url: str, *, rate: float, seconds: float, connections: str, pids: list[int]
) -> dict[str, Any]:
    """`rate` requests a second for `seconds`; the CPU the processes `pids` (and
    their children) spent per request answered, in µs."""
    user, system = cpu_split(pids)
    tally = asyncio.run(_run(url, rate, seconds, connections))
    user_after, system_after = cpu_split(pids)
    spent_user, spent_system = user_after - user, system_after - system
    latencies = sorted(tally.latencies_ms)
    figures: dict[str, Any] = {
        "rps": tally.ok / seconds,
        "requests": float(tally.ok),
        "failed": float(tally.failed),
        "failures": dict(tally.failures),
        "p50_ms": latencies[len(latencies) // 2] if latencies else 0.0,
        "p99_ms": latencies[int(len(latencies) * 0.99)] if latencies else 0.0,
        "bytes_per_request": tally.bytes / tally.ok if tally.ok else 0.0,
    }
    if pids and tally.ok:
        figures["cpu_us_per_request"] = (spent_user + spent_system) / tally.ok * 1e6
        figures["system_share"] = spent_system / ((spent_user + spent_system) or 1)
    return figures


def idle_cpu_ms_per_s(pids: list[int], seconds: float = 5.0) -> float:
    """What the processes spend with nothing asked of them (timers, followers)."""
    before = cpu_seconds(pids)
    time.sleep(seconds)
    return (cpu_seconds(pids) - before) / seconds * 1000


@dataclass(frozen=True)
class Plan:
    """What to ask each target for: rates (a second), connection kinds, seconds per
    run, rounds."""

    rates: tuple[float, ...] = (25.0, 100.0)
    connections: tuple[str, ...] = CONNECTIONS
    seconds: float = 6.0
    rounds: int = 3


# The targets compared: {"small": (url, edge), "real": (url, edge)}.
Targets = dict[str, tuple[str, Process]]


def page_compare(targets: Targets, plan: Plan) -> dict[str, Any]:
    """Both targets at each rate and connection kind, alternated, `plan.rounds`
    times: the medians, the idle CPU of each edge, the real page's ratio."""
    idle = {name: idle_cpu_ms_per_s([edge.pid]) for name, (_, edge) in targets.items()}
    print("idle CPU, ms a second: " + json.dumps(idle), flush=True)
    medians = _medians(_runs(plan, targets), idle)
    ratios = _ratios(medians)
    _table_print(medians, ratios)
    return {
        "idle_cpu_ms_per_s": idle,
        "figures": medians,
        "real_over_small_busy_cpu": ratios,
        "load": f"open loop, {plan.seconds:g}s a run, medians of {plan.rounds} rounds",
    }


def _runs(plan: Plan, targets: Targets) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {}
    for number in range(1, plan.rounds + 1):
        for rate in plan.rates:
            for connections in plan.connections:
                for name, (url, edge) in targets.items():
                    key = f"{name} {rate:g}/s {connections}"
                    f = open_loop(
                        url, rate=rate, seconds=plan.seconds,
                        connections=connections, pids=[edge.pid],
                    )  # fmt: skip
                    runs.setdefault(key, []).append(f)
                    print(
                        f"    round {number} {key:<30} {f['rps']:>6.1f} req/s "
                        f"({f['failed']:.0f} failed)  p50 {f['p50_ms']:.2f} ms  "
                        f"CPU {f.get('cpu_us_per_request', 0):.0f} us/req "
                        f"({f.get('system_share', 0):.0%} system)",
                        flush=True,
                    )
    return runs


def _medians(
    runs: dict[str, list[dict[str, Any]]], idle: dict[str, float]
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, values in runs.items():
        name, rate = key.split()[0], float(key.split()[1].removesuffix("/s"))
        cpu = [v["cpu_us_per_request"] for v in values if "cpu_us_per_request" in v]
        # The idle share: what the edge spends a second anyway, spread on the rate.
        busy = [c - idle[name] * 1000 / rate for c in cpu]
        out[key] = {
            "cpu_us_per_request": statistics.median(cpu),
            "cpu_us_range": [min(cpu), max(cpu)],
            "busy_cpu_us_per_request": statistics.median(busy),
            "busy_cpu_us_range": [min(busy), max(busy)],
            "system_share": round(
                statistics.median(v.get("system_share", 0) for v in values), 2
            ),
            "p50_ms": statistics.median(v["p50_ms"] for v in values),
            "failed": sum(v["failed"] for v in values),
            "failures": dict(
                sum((Counter(v.get("failures", {})) for v in values), Counter())
            ),
            "bytes_per_request": values[0]["bytes_per_request"],
        }
    return out


def _ratios(medians: dict[str, dict[str, Any]]) -> dict[str, float]:
    ratios = {}
    for key, figures in medians.items():
        if key.startswith("real "):
            small = medians["small " + key.removeprefix("real ")]
            ratios[key.removeprefix("real ")] = round(
                figures["busy_cpu_us_per_request"] / small["busy_cpu_us_per_request"],
                2,
            )
    return ratios


def _table_print(medians: dict[str, dict[str, Any]], ratios: dict[str, float]) -> None:
    print(
        f"\n{'target':<26} {'CPU us/req':>10} {'busy':>6} {'system':>6} {'p50 ms':>8}"
    )
    for key, f in medians.items():
        print(
            f"{key:<26} {f['cpu_us_per_request']:>10.0f} "
            f"{f['busy_cpu_us_per_request']:>6.0f} {f['system_share']:>6.0%} "
            f"{f['p50_ms']:>8.2f}"
        )
    print("real page over small origin (busy CPU): " + json.dumps(ratios))
