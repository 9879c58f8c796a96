"""Questions over many traces: the URI filter (`traces find`) and sale percentiles."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from observability.model import Trace
from observability.spans import SEGMENTS

_WINDOW = re.compile(r"^(?P<amount>\d+(?:\.\d+)?)(?P<unit>s|m|h|d)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
PERCENTILES = (50, 95, 99)
# Where a purchase is placed: the Muskie buy-now form (either path) and the JSON API.
PURCHASE_PATHS = ("/shop/rods/muskie-casting-rod/", "/api/orders/")


def window_start_ns(last: str, *, now_ns: int | None = None) -> int:
    """`--last 10m` as the epoch nanoseconds it starts at (s, m, h or d)."""
    match = _WINDOW.match(last.strip())
    if not match:
        raise ValueError(f"{last!r} is not a window like 30s, 10m, 2h or 1d")
    seconds = float(match["amount"]) * _UNIT_SECONDS[match["unit"]]
    return (now_ns or time.time_ns()) - int(seconds * 1e9)


def entry_path(trace: Trace) -> str:
    """The path the customer asked for: the first server span's target."""
    for span, _ in trace.walk():
        if span.kind == "server" and span.http_target:
            return span.http_target
    return ""


def entry_status(trace: Trace) -> int | None:
    for span, _ in trace.walk():
        if span.kind == "server":
            return span.http_status
    return None


def entry_method(trace: Trace) -> str:
    for span, _ in trace.walk():
        if span.kind == "server":
            return span.http_method
    return ""


def trace_matches(trace: Trace, *, path: str = "", mode: str = "") -> bool:
    """The request's path starts with `path`; `mode` is the edge's mode or the
    path the purchase took (legacy, strangler)."""
    return entry_path(trace).startswith(path) and (
        not mode or mode in (trace.mode, trace.path)
    )


def traces_find(
    traces: Iterable[Trace], *, path: str = "", mode: str = ""
) -> list[Trace]:
    return [t for t in traces if trace_matches(t, path=path, mode=mode)]


def purchases_find(
    traces: Iterable[Trace], *, paths: Sequence[str]
) -> tuple[list[Trace], list[Trace]]:
    """(accepted, refused): POSTs to one of `paths`, answered below 400 or not.

    A sale's load test also reads pages (GET): they are not purchases.
    """
    accepted: list[Trace] = []
    refused: list[Trace] = []
    for trace in traces:
        if entry_method(trace) != "POST" or not any(
            entry_path(trace).startswith(path) for path in paths
        ):
            continue
        status = entry_status(trace)
        (accepted if status is not None and status < 400 else refused).append(trace)
    return accepted, refused


@dataclass(frozen=True)
class SegmentStats:
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float


def _percentile(values: Sequence[float], percent: int) -> float:
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[percent - 1]


def _stats(values_ns: Sequence[int]) -> SegmentStats:
    values = sorted(v / 1e6 for v in values_ns)
    p50, p95, p99 = (round(_percentile(values, p), 3) for p in PERCENTILES)
    return SegmentStats(len(values), p50, p95, p99)


def segment_percentiles(traces: Iterable[Trace]) -> dict[str, dict[str, SegmentStats]]:
    """Per path (legacy, strangler): p50/p95/p99 of every segment and of the totals."""
    samples: dict[str, dict[str, list[int]]] = {}
    for trace in traces:
        by_name = samples.setdefault(trace.path, {})
        by_name.setdefault("customer-facing latency", []).append(
            trace.customer_latency_ns
        )
        if trace.fulfilled_ns is not None:
            by_name.setdefault("time until fulfilled", []).append(trace.fulfilled_ns)
        times = trace.segment_times()
        for key, _ in SEGMENTS:
            by_name.setdefault(key, []).append(times[key])
    return {
        mode: {name: _stats(values) for name, values in by_name.items() if values}
        for mode, by_name in samples.items()
    }
