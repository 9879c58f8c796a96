"""Prometheus metrics per route and origin, summed over every edge worker.

uvicorn's workers are separate processes, and a scrape reaches one of them, so the
metrics use prometheus_client's multiprocess mode: each worker writes its values to
files in one directory (per uvicorn master), and `/_edge/metrics` sums them.
`PROMETHEUS_MULTIPROC_DIR` overrides the directory.
"""

from __future__ import annotations

import bisect
import contextlib
import multiprocessing
import os
import re
import tempfile
from pathlib import Path


def _metrics_dir() -> Path:
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if configured:
        path = Path(configured)
    else:
        parent = multiprocessing.parent_process()
        master = parent.pid if parent is not None else os.getpid()
        path = Path(tempfile.gettempdir()) / f"edge-metrics-{master}"
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


# Must be set before prometheus_client picks its value class at import.
METRICS_DIR = _metrics_dir()

from prometheus_client import (  # noqa: E402
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0, 30.0,
)  # fmt: skip

REQUESTS = Counter(
    "edge_requests_total",
    "Requests answered by the edge, by route, origin and status code.",
    ["route", "origin", "code"],
)
LATENCY = Histogram(
    "edge_request_duration_seconds",
    "Time from the request's arrival to the response's start, per route and origin.",
    ["route", "origin"],
    buckets=BUCKETS,
)
IN_FLIGHT = Gauge(
    "edge_requests_in_flight",
    "Requests (and open websockets) being proxied now, per route and origin.",
    ["route", "origin"],
    multiprocess_mode="livesum",
)
# The watched page (EDGE_WATCHED_PATH, the Tourney page): finer buckets, so the
# control room's p50 and p99 of it read to a few milliseconds.
WATCHED_BUCKETS = (
    0.002, 0.004, 0.006, 0.008, 0.01, 0.0125, 0.015, 0.0175, 0.02, 0.025, 0.03, 0.04,
    0.05, 0.065, 0.08, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.65, 0.8, 1.0,
    1.5, 2.0, 3.0, 5.0, 10.0, 30.0,
)  # fmt: skip
WATCHED_LATENCY = Histogram(
    "edge_watched_page_duration_seconds",
    "Time to the response's start of the one page the control room watches "
    "(EDGE_WATCHED_PATH), whatever its route.",
    buckets=WATCHED_BUCKETS,
)
MODE_CHANGES = Counter(
    "edge_mode_changes_total",
    "Mode changes this edge followed, per new mode.",
    ["mode"],
)

# The nginx engine's own (edge_router/engine.py): what stub_status and reloads say.
NGINX_CONNECTIONS = Gauge(
    "edge_nginx_connections",
    "nginx's client connections by state (stub_status): active, reading, "
    "writing, waiting.",
    ["state"],
    multiprocess_mode="livemax",
)
NGINX_RELOADS = Counter(
    "edge_nginx_reloads_total",
    "Configurations the control plane had nginx load, by outcome.",
    ["outcome"],
)
CONNECTIONS_REFUSED = Counter(
    "edge_connections_refused_total",
    "Visitors' connections the edge closed itself: headers too slow "
    "(header_timeout), too many from one address (per_address).",
    ["reason"],
)

_PID_FILE = re.compile(r"_(\d+)\.db$")


def forget_dead_workers() -> None:
    """Drop the live gauges of workers that are gone (a restart, an old master)."""
    for path in METRICS_DIR.glob("*.db"):
        match = _PID_FILE.search(path.name)
        if not match:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, str(METRICS_DIR))
        except PermissionError:
            continue


def worker_exit() -> None:
    with contextlib.suppress(OSError):
        multiprocess.mark_process_dead(os.getpid(), str(METRICS_DIR))


def _histogram_add(histogram: Histogram, counts: list[int], total: float) -> None:
    """Add observations to a histogram at once: `counts` per bucket (its bounds'
    order), `total` their sum. prometheus_client's `observe` takes one at a time,
    each a locked write to the worker's file; there is no public bulk one."""
    histogram._raise_if_not_observable()
    histogram._sum.inc(total)
    for bucket, count in zip(histogram._buckets, counts, strict=True):
        if count:
            bucket.inc(count)


def latency_observe_many(histogram: Histogram, seconds: float, times: int) -> None:
    """`times` observations of `seconds` in one update of the sum and one bucket:
    the nginx engine's control plane took each of nginx's log lines one by one (about
    0.3 µs of its CPU a request under wrk; now a few updates per 64 KiB of log)."""
    counts = [0] * len(histogram._upper_bounds)
    counts[bisect.bisect_left(histogram._upper_bounds, seconds)] = times
    _histogram_add(histogram, counts, seconds * times)


class PendingHistogram:
    """A histogram's observations kept in the worker, added to its file by `publish`
    (a few times a second): a request costs a list increment, not three locked file
    writes and their pid checks."""

    __slots__ = ("_bounds", "_counts", "_sum", "_target")

    def __init__(self, target: Histogram) -> None:
        self._target = target
        self._bounds = list(target._upper_bounds)
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0

    def observe(self, seconds: float) -> None:
        # The first bound at or above: prometheus_client's own `amount <= bound`.
        self._counts[bisect.bisect_left(self._bounds, seconds)] += 1
        self._sum += seconds

    def publish(self) -> None:
        if self._sum or any(self._counts):
            counts, self._counts = self._counts, [0] * len(self._bounds)
            total, self._sum = self._sum, 0.0
            _histogram_add(self._target, counts, total)


watched_latency = PendingHistogram(WATCHED_LATENCY)


def render() -> tuple[bytes, str]:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(METRICS_DIR))
    return generate_latest(registry), CONTENT_TYPE_LATEST


class RouteMetrics:
    """The label children of one (route, origin), bound once: no lookups per request.

    What a request moves stays in the worker: `active` (a plain int), the answers by
    status and the latencies (PendingHistogram). `publish`, a few times a second
    (edge_router/app.py) and at exit, copies them to the shared files: a request
    then writes no file at all (it wrote five, each locked and with a pid check).
    """

    __slots__ = (
        "_codes",
        "_gauge",
        "_origin",
        "_pending",
        "_route",
        "active",
        "latency",
    )

    def __init__(self, route: str, origin: str) -> None:
        self._route = route
        self._origin = origin
        self.latency = PendingHistogram(LATENCY.labels(route, origin))
        self._gauge = IN_FLIGHT.labels(route, origin)
        self._codes: dict[int, Counter] = {}
        self._pending: dict[int, int] = {}
        self.active = 0

    def publish(self) -> None:
        self._gauge.set(self.active)
        self.latency.publish()
        if self._pending:
            pending, self._pending = self._pending, {}
            for status, times in pending.items():
                self._counter(status).inc(times)

    def count(self, status: int) -> None:
        pending = self._pending
        pending[status] = pending.get(status, 0) + 1

    def _counter(self, status: int) -> Counter:
        child = self._codes.get(status)
        if child is None:
            child = self._codes[status] = REQUESTS.labels(
                self._route, self._origin, str(status)
            )
        return child
