"""The load of `bench.orders`: a fixed number of requests, closed loop or paced.

Closed loop for CPU per request (a fixed load, `concurrency` at once); paced (open
loop) for latency, each request's latency counted from when it was due, so that a
slow answer cannot hide the ones queued behind it.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import aiohttp

ORDER = {"sku": "ROD-MUSKIE", "quantity": 1, "email": "bench@example.com"}


@dataclass
class Load:
    statuses: Counter[int] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    seconds: float = 0.0

    def percentile(self, q: float) -> float | None:
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0] if self.latencies_ms else None
        cuts = statistics.quantiles(self.latencies_ms, n=1000, method="inclusive")
        return cuts[round(q * 1000) - 1]


async def _post(
    session: aiohttp.ClientSession, path: str, load: Load, since: float
) -> None:
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    async with session.post(path, json=ORDER, headers=headers) as response:
        await response.read()
    load.statuses[response.status] += 1
    load.latencies_ms.append((time.perf_counter() - since) * 1000)


async def _closed(base: str, path: str, requests: int, concurrency: int) -> Load:
    load = Load()
    left = iter(range(requests))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url=base, connector=connector) as session:

        async def buyer() -> None:
            for _ in left:
                await _post(session, path, load, time.perf_counter())

        started = time.perf_counter()
        await asyncio.gather(*(buyer() for _ in range(concurrency)))
        load.seconds = time.perf_counter() - started
    return load


async def _paced(base: str, path: str, rate: float, requests: int) -> Load:
    load = Load()
    async with aiohttp.ClientSession(base_url=base) as session:
        started = time.perf_counter()
        tasks = []
        for n in range(requests):
            due = started + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_post(session, path, load, due)))
        await asyncio.gather(*tasks)
        load.seconds = time.perf_counter() - started
    return load


def load_closed(*, base: str, path: str, requests: int, concurrency: int) -> Load:
    """`requests` POSTs, `concurrency` at a time."""
    return asyncio.run(_closed(base, path, requests, concurrency))


def load_paced(*, base: str, path: str, rate: float, requests: int) -> Load:
    """`requests` POSTs due evenly at `rate` a second, however slow the answers."""
    return asyncio.run(_paced(base, path, rate, requests))
