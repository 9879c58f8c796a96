"""Latency and throughput figures of one phase, from the load generator's samples."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from loadtest.journal import Sample

TOURNEY = "tourney page"
MUSKIE_BUY = "muskie buy"


def is_tourney(name: str) -> bool:
    return name == TOURNEY


def is_browse(name: str) -> bool:
    return name.startswith("browse: ")


def is_muskie_buy(name: str) -> bool:
    return name == MUSKIE_BUY


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100), linear between the closest ranks; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def figures(
    samples: Iterable[Sample],
    *,
    which: Callable[[str], bool],
    start: float,
    end: float,
) -> dict[str, Any]:
    """requests, failures, rps, p50/p95/p99 of the samples `which` picks in a window."""
    chosen = [s for s in samples if which(s[1]) and start <= s[0] < end]
    times = [s[3] for s in chosen]
    seconds = max(end - start, 1e-9)
    return {
        "requests": len(chosen),
        "failures": sum(1 for s in chosen if not s[4]),
        "rps": round(len(chosen) / seconds, 2),
        "p50_ms": _round(percentile(times, 50)),
        "p95_ms": _round(percentile(times, 95)),
        "p99_ms": _round(percentile(times, 99)),
    }


def series(
    points: Iterable[tuple[float, float]],
    *,
    start: float,
    bucket: float,
    quantiles: Sequence[float] = (50, 95, 99),
) -> list[dict[str, Any]]:
    """Percentiles per `bucket` seconds: [{t, n, p50, p95, p99}], t from `start`."""
    buckets: dict[int, list[float]] = {}
    for at, value in points:
        if at >= start:
            buckets.setdefault(int((at - start) // bucket), []).append(value)
    rows = []
    for index in sorted(buckets):
        values = buckets[index]
        row: dict[str, Any] = {"t": (index + 0.5) * bucket, "n": len(values)}
        for q in quantiles:
            row[f"p{q:g}"] = percentile(values, q)
        rows.append(row)
    return rows


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 2)


def bootstrap_ratio(
    numerator: Sequence[float],
    denominator: Sequence[float],
    *,
    q: float = 99,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float] | None:
    """A percentile bootstrap interval of percentile(numerator, q) over
    percentile(denominator, q): both samples drawn again with replacement, each on
    its own, `resamples` times; the middle `confidence` of the ratios. None when
    either sample is empty (or a resampled denominator is 0)."""
    if not numerator or not denominator:
        return None
    draw = random.Random(seed)
    ratios = []
    for _ in range(resamples):
        top = percentile(draw.choices(numerator, k=len(numerator)), q)
        bottom = percentile(draw.choices(denominator, k=len(denominator)), q)
        if top is None or not bottom:
            return None
        ratios.append(top / bottom)
    tail = (1 - confidence) / 2 * 100
    low, high = percentile(ratios, tail), percentile(ratios, 100 - tail)
    assert low is not None
    assert high is not None
    return round(low, 2), round(high, 2)


def drain_rate(done_at: Sequence[float], *, trim: float = 0.1) -> float | None:
    """Orders a second, from when each was done: the slope between the orders at
    the `trim` and 1 - `trim` quantiles of the times (the start, while the workers
    fill up, and the last stragglers left out). None under 10 orders."""
    times = sorted(done_at)
    if len(times) < 10:
        return None
    low = int(len(times) * trim)
    high = len(times) - 1 - low
    span = times[high] - times[low]
    return round((high - low) / span, 2) if span > 0 else None
