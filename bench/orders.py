"""Orders accepted per second, and accept latency, on the new order path vs the legacy
shop's buy now, for the same product, in the same run, at 64 concurrent buyers.

    python -m bench.orders [--buyers 64] [--seconds 10] [--orders-workers 2]

Starts the whole stack as the Procfile runs it (warehouse: capacity 8, 50 ms per order;
shop: 2 workers x 8 threads; orders: gunicorn + uvicorn workers; relay; orders-worker;
fulfillment worker), each service on a throw-away database of its own, tops the shop's
Muskie stock up so neither path sells out, then drives each path in turn with an
aiohttp load generator for `--seconds`:

- legacy buy now: POST /shop/rods/muskie-casting-rod/buy/ (form + CSRF) on the shop;
  accepted = 303 (the shop answers only once the warehouse has packed the order);
- new buy now:    the same form contract on the orders service; accepted = 303;
- new JSON API:   POST /api/orders/ with an Idempotency-Key; accepted = 202.

Then the JSON API once more, paced: orders offered at `--paced-ratio` (10) times the
legacy path's measured rate, evenly spaced, by at most `--buyers` buyers at once, with
each latency counted from the moment its order was due (so a slow answer cannot hide
the ones queued behind it). The closed loop says how many orders per second the path
takes; the paced run says how fast it answers at ten times the legacy rate.

Prints a table and the ratios, writes `reports/bench-orders-<timestamp>.json`.
Target: >= 10x the legacy throughput with p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.cpu import cpu_seconds
from bench.reports import machine_describe, report_stamp, report_write
from common.harness.orders_stack import orders_stack

PRODUCT = "/shop/rods/muskie-casting-rod/"
TARGET_RATIO = 10.0
TARGET_P99_MS = 50.0


@dataclass
class Result:
    name: str
    seconds: float
    accepted: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    accepted_ms: list[float] = field(default_factory=list, repr=False)
    server_cpu_ms_per_order: float | None = None

    @property
    def per_second(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float | None:
        if len(self.accepted_ms) < 2:
            return self.accepted_ms[0] if self.accepted_ms else None
        return statistics.quantiles(self.accepted_ms, n=1000, method="inclusive")[
            round(q * 1000) - 1
        ]

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "seconds": round(self.seconds, 2),
            "accepted": self.accepted,
            "accepted_per_second": round(self.per_second, 1),
            "p50_ms": _round(self.percentile(0.5)),
            "p99_ms": _round(self.percentile(0.99)),
            "server_cpu_ms_per_order": self.server_cpu_ms_per_order,
            "statuses": self.statuses,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


async def _form_buyer(
    base: str, deadline: float, result: Result, accepted_status: int
) -> None:
    """One buyer with its own cookies: get the page (CSRF), then buy until time."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(base_url=base, cookie_jar=jar) as session:
        async with session.get(PRODUCT) as page:
            html = await page.text()
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
        if match is None:
            raise RuntimeError(f"no buy form at {base}{PRODUCT}")
        form = {
            "csrfmiddlewaretoken": match.group(1),
            "quantity": "1",
            "email": "bench@example.com",
        }
        while time.monotonic() < deadline:
            started = time.perf_counter()
            async with session.post(
                PRODUCT + "buy/",
                data=form,
                allow_redirects=False,
                headers={"Referer": base + PRODUCT},
            ) as response:
                await response.read()
            _count(result, response.status, started, accepted_status)


async def _api_buyer(base: str, deadline: float, result: Result) -> None:
    body = {"sku": "ROD-MUSKIE", "quantity": 1, "email": "bench@example.com"}
    async with aiohttp.ClientSession(base_url=base) as session:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            key = {"Idempotency-Key": str(uuid.uuid4())}
            async with session.post("/api/orders/", json=body, headers=key) as response:
                await response.read()
            _count(result, response.status, started, 202)


async def _paced(base: str, rate: float, seconds: float, buyers: int) -> Result:
    """The JSON API at `rate` orders/s, at most `buyers` in flight (open loop)."""
    result = Result(name=f"new JSON API, paced at {rate:.0f}/s", seconds=seconds)
    body = {"sku": "ROD-MUSKIE", "quantity": 1, "email": "bench@example.com"}
    slots = asyncio.Semaphore(buyers)
    connector = aiohttp.TCPConnector(limit=buyers)
    async with aiohttp.ClientSession(base_url=base, connector=connector) as session:

        async def one(due: float) -> None:
            async with slots:
                key = {"Idempotency-Key": str(uuid.uuid4())}
                async with session.post(
                    "/api/orders/", json=body, headers=key
                ) as response:
                    await response.read()
            _count(result, response.status, due, 202)

        start = time.perf_counter()
        tasks = []
        for n in range(max(1, round(rate * seconds))):
            due = start + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(due)))
        await asyncio.gather(*tasks)
        result.seconds = time.perf_counter() - start
    return result


def _count(result: Result, status: int, started: float, accepted: int) -> None:
    key = str(status)
    result.statuses[key] = result.statuses.get(key, 0) + 1
    if status == accepted:
        result.accepted += 1
        result.accepted_ms.append((time.perf_counter() - started) * 1000)


async def _drive(name: str, buyers: int, seconds: float, make: Any) -> Result:
    result = Result(name=name, seconds=seconds)
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    await asyncio.gather(*(make(deadline, result) for _ in range(buyers)))
    result.seconds = time.monotonic() - started
    return result


def run_paths(
    urls: dict[str, str], pids: dict[str, int], buyers: int, seconds: float
) -> list[Result]:
    """Each path in turn; also the server's CPU time per accepted order, a figure
    that does not depend on what else runs on the machine."""
    shop, orders = urls["shop"], urls["orders"]
    plans = [
        ("legacy buy now (shop)", "shop", lambda d, r: _form_buyer(shop, d, r, 303)),
        (
            "new JSON API (POST /api/orders/)",
            "orders",
            lambda d, r: _api_buyer(orders, d, r),
        ),
        (
            "new buy now (orders form)",
            "orders",
            lambda d, r: _form_buyer(orders, d, r, 303),
        ),
    ]
    results = []
    for name, server, make in plans:
        cpu_before = cpu_seconds([pids[server]])
        result = asyncio.run(_drive(name, buyers, seconds, make))
        cpu = cpu_seconds([pids[server]]) - cpu_before
        result.server_cpu_ms_per_order = (
            round(cpu * 1000 / result.accepted, 2) if result.accepted else None
        )
        results.append(result)
    return results


def print_table(results: list[Result]) -> None:
    head = (
        f"{'path':<36} {'accepted/s':>11} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'cpu ms':>7}  answers"
    )
    print(head)
    print("-" * len(head))
    for result in results:
        s = result.summary()
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(result.statuses.items()))
        print(
            f"{result.name:<36} {s['accepted_per_second']:>11.1f} "
            f"{s['p50_ms'] or float('nan'):>8.2f} {s['p99_ms'] or float('nan'):>8.2f} "
            f"{s['server_cpu_ms_per_order'] or float('nan'):>7.2f}  {answers}"
        )


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buyers", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--orders-workers", type=int, default=2)
    parser.add_argument(
        "--paced-ratio",
        type=float,
        default=TARGET_RATIO,
        help="the paced run offers this many times the legacy rate (0: skip it)",
    )
    return parser.parse_args(argv)


def _measure(args: argparse.Namespace) -> tuple[list[Result], Result | None, Counter]:
    """The stack, each path in turn, then the paced run; the backlog at the end."""
    # Throw-away databases named with this suffix, so that a test run on the same
    # server is not disturbed.
    os.environ.setdefault("TEST_DATABASE_SUFFIX", "_bench")
    print(f"==> starting the stack ({args.orders_workers} orders workers)", flush=True)
    with orders_stack(
        "bench",
        warehouse_capacity=8,
        warehouse_handling_ms=50,
        orders_workers=args.orders_workers,
    ) as stack:
        units = 500_000
        stack.shop_stock_add(units)  # for the sale's allocation
        stack.shop_stock_add(units)  # for the legacy path
        stack.orders_manage("sale", "open", "muskie-casting-rod", "--units", str(units))
        stack.fulfillment_worker()
        print(
            f"==> {args.buyers} buyers, {args.seconds:.0f} s per path "
            f"(warehouse: capacity 8, 50 ms per order)",
            flush=True,
        )
        results = run_paths(
            {"shop": stack.shop.url, "orders": stack.orders.url},
            {"shop": stack.shop.pid, "orders": stack.orders.pid},
            args.buyers,
            args.seconds,
        )
        paced = None
        if args.paced_ratio > 0 and results[0].per_second > 0:
            rate = args.paced_ratio * results[0].per_second
            print(f"==> the JSON API paced at {rate:.0f} orders/s", flush=True)
            paced = asyncio.run(
                _paced(stack.orders.url, rate, args.seconds, args.buyers)
            )
        return results, paced, stack.order_statuses()


def _verdicts(results: list[Result], paced: Result | None) -> dict[str, float]:
    """Each new path against the legacy one, said; the ratios."""
    legacy = results[0].per_second or float("nan")
    ratios = {r.name: round(r.per_second / legacy, 1) for r in results[1:]}
    print()
    for name, ratio in ratios.items():
        p99 = next(r for r in results if r.name == name).percentile(0.99) or 0.0
        verdict = (
            "meets" if ratio >= TARGET_RATIO and p99 <= TARGET_P99_MS else "MISSES"
        )
        print(
            f"{name}: {ratio}x the legacy throughput, p99 {p99:.1f} ms -> {verdict} "
            f"the target (>= {TARGET_RATIO:.0f}x, p99 <= {TARGET_P99_MS:.0f} ms)"
        )
    if paced is not None:
        p99 = paced.percentile(0.99) or float("nan")
        offered = paced.per_second / legacy if paced.accepted else 0.0
        print(
            f"paced: {paced.per_second:.1f} accepted/s ({offered:.1f}x the legacy "
            f"throughput), p99 {p99:.1f} ms from when each order was due -> "
            f"{'within' if p99 <= TARGET_P99_MS else 'ABOVE'} {TARGET_P99_MS:.0f} ms"
        )
    return ratios


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    results, paced, backlog = _measure(args)
    print()
    print_table(results + ([paced] if paced else []))
    ratios = _verdicts(results, paced)
    print(f"orders left in the fulfillment backlog at the end: {dict(backlog)}")
    stamp = report_stamp()
    report = {
        "when": stamp,
        "machine": machine_describe(),
        "buyers": args.buyers,
        "seconds_per_path": args.seconds,
        "orders_workers": args.orders_workers,
        "results": [r.summary() for r in results],
        "paced": paced.summary() if paced else None,
        "paced_ratio": args.paced_ratio,
        "ratios_vs_legacy": ratios,
        "target": {"ratio": TARGET_RATIO, "p99_ms": TARGET_P99_MS},
        "backlog_at_end": dict(Counter(backlog)),
    }
    report_write("orders", stamp, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
