"""What the control room's charts show, read once a tick for every viewer.

- the watched page's p50 and p99: the edge's own histogram of it
  (edge_watched_page_duration_seconds, all workers' files), over the last
  EDGE_CONTROL_WINDOW_SECONDS, interpolated within a bucket as Prometheus'
  histogram_quantile does;
- Muskie orders accepted and fulfilled a second: the orders service's sale board
  (GET /api/sales/muskie-casting-rod/), differences of its counts;
- the warehouse's orders in flight by source against its capacity, and what it
  packs a second: its stats (GET /stats/, the internal token);
- the fulfillment queue's depth: LLEN of the Celery queue in Redis.

A source that does not answer is named in `down`; the others still show.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

import aiohttp
import redis
from prometheus_client import multiprocess

from edge_router import metrics
from edge_router.control_room.settings import ControlSettings

MUSKIE_BOARD = "/api/sales/muskie-casting-rod/"
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=2.0)
WATCHED = "edge_watched_page_duration_seconds"


def watched_buckets() -> list[tuple[float, float]]:
    """(upper bound, cumulative count) of the watched page, summed over workers."""
    files = [str(p) for p in metrics.METRICS_DIR.glob("histogram_*.db")]
    found: dict[float, float] = {}
    for family in multiprocess.MultiProcessCollector.merge(files, accumulate=True):
        if family.name != WATCHED:
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                found[float(sample.labels["le"])] = sample.value
    return sorted(found.items())


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """The q-quantile of cumulative buckets (seconds), None without observations."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower
            share = (rank - below) / (count - below) if count > below else 1.0
            return lower + (bound - lower) * share
        lower, below = bound, count
    return lower


def window_difference(
    now: list[tuple[float, float]], then: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    before = dict(then)
    # A worker restarted: its counts are gone, so a bucket can go down; never < 0.
    return [(bound, max(0.0, count - before.get(bound, 0.0))) for bound, count in now]


class Readings:
    """The last readings, so counts become rates and windows."""

    def __init__(self, settings: ControlSettings) -> None:
        self.settings = settings
        self.histograms: deque[tuple[float, list[tuple[float, float]]]] = deque()
        self.previous: dict[str, tuple[float, float]] = {}

    def rate(self, name: str, at: float, count: float | None) -> float | None:
        """Per second since the last reading; a reset (count went down) reads 0."""
        if count is None:
            self.previous.pop(name, None)
            return None
        last = self.previous.get(name)
        self.previous[name] = (at, count)
        if last is None or at <= last[0]:
            return None
        return round(max(0.0, count - last[1]) / (at - last[0]), 2)

    def latency(self, at: float, buckets: list[tuple[float, float]]) -> dict[str, Any]:
        self.histograms.append((at, buckets))
        while self.histograms[0][0] < at - self.settings.window_seconds:
            self.histograms.popleft()
        window = window_difference(buckets, self.histograms[0][1])
        count = window[-1][1] if window else 0.0
        p50, p99 = quantile(0.5, window), quantile(0.99, window)
        return {
            "p50_ms": None if p50 is None else round(p50 * 1000, 1),
            "p99_ms": None if p99 is None else round(p99 * 1000, 1),
            "requests": int(count),
        }


async def _json(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str]
) -> dict[str, Any]:
    async with session.get(url, headers=headers, timeout=HTTP_TIMEOUT) as answer:
        answer.raise_for_status()
        return dict(await answer.json())


async def sample(
    readings: Readings,
    *,
    session: aiohttp.ClientSession,
    client: Any,
) -> dict[str, Any]:
    """One tick's figures (see the module's docstring)."""
    settings = readings.settings
    headers = (
        {"Authorization": f"Bearer {settings.internal_token}"}
        if settings.internal_token
        else {}
    )
    board, stats, depth, buckets = await asyncio.gather(
        _json(session, settings.orders_url + MUSKIE_BOARD, {}),
        _json(session, settings.warehouse_url + "/stats/", headers),
        client.llen(settings.fulfillment_queue),
        asyncio.to_thread(watched_buckets),
        return_exceptions=True,
    )
    at = time.time()
    down = []
    if isinstance(board, BaseException):
        # 404: no sale open in the orders service (legacy mode): nothing to count.
        missing = getattr(board, "status", 0) == 404
        down += [] if missing else ["orders"]
        board = {}
    if isinstance(stats, BaseException):
        down.append("warehouse")
        stats = {}
    if isinstance(depth, BaseException):
        down.append("redis")
        depth = None
    if isinstance(buckets, BaseException):
        buckets = []
    by_source = stats.get("in_flight_by_source") or {}
    return {
        "at": round(at, 3),
        "tourney": readings.latency(at, buckets),
        "muskie": {
            "accepted": board.get("accepted"),
            "fulfilled": board.get("fulfilled"),
            "accepted_per_s": readings.rate("accepted", at, board.get("accepted")),
            "fulfilled_per_s": readings.rate("fulfilled", at, board.get("fulfilled")),
        },
        "warehouse": {
            "capacity": stats.get("capacity"),
            "in_flight": stats.get("in_flight"),
            "new_path": by_source.get("MU", 0) if stats else None,
            "legacy": by_source.get("LF", 0) if stats else None,
            "packed_per_s": readings.rate("packed", at, stats.get("fulfilled")),
            "refused": stats.get("refused"),
        },
        "queue": {"depth": depth},
        "down": down,
    }


REDIS_ERRORS = (redis.RedisError, OSError)
