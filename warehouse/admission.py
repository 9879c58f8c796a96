"""Admission: at most `WAREHOUSE_CAPACITY` orders are picked and packed at once.

Capacity is per PROCESS. Orders in flight are counted in memory under a threading lock,
so the warehouse runs as ONE gunicorn process with many gthread threads
(`--workers 1 --threads 32`, see Procfile):

- N worker processes would each admit `capacity` orders: N times capacity in all.
- Threads must outnumber the capacity. Otherwise gunicorn's own connection backlog,
  not this gate, becomes the limit, and the overflow waits instead of getting a 503.

A request over capacity is refused at once (503, Retry-After: 1); it never queues here.

The stats are this process's too, counted here under the same lock as the gate, so one
snapshot is always consistent: `fulfilled` counts orders this process newly fulfilled
(HTTP 201, replays excluded) and `refused` counts 503s, both since `since` (process
start, or the last reset). `peak_in_flight_by_source` splits the peak by the order
ref's prefix (`MU` from the orders service's queue, `LF` from the legacy shop), so a
load test can see what each caller did to the warehouse. A reset keeps the
fulfilments themselves (idempotency must survive it) and keeps `in_flight`, which is
a live count, not a statistic.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings

from warehouse.faults import capacity_now


@dataclass(frozen=True)
class AdmissionStats:
    capacity: int
    in_flight: int
    peak_in_flight: int
    fulfilled: int
    refused: int
    since: datetime
    peak_in_flight_by_source: dict[str, int]
    # Live, as `in_flight` (the control room's chart): sources with none are left out.
    in_flight_by_source: dict[str, int]


class Admission:
    """A counting gate with statistics; safe to share between threads."""

    def __init__(
        self, *, capacity: int, capacity_now: Callable[[], int] | None = None
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self._capacity = capacity
        # A live source of the capacity (the `warehouse.capacity` fault), if any.
        self._capacity_now = capacity_now
        self._lock = threading.Lock()
        self._in_flight = 0
        self._peak = 0
        self._fulfilled = 0
        self._refused = 0
        self._since = datetime.now(UTC)
        self._by_source: dict[str, int] = {}
        self._peak_by_source: dict[str, int] = {}

    @property
    def capacity(self) -> int:
        return self._capacity_now() if self._capacity_now else self._capacity

    def try_enter(self, source: str = "") -> bool:
        """Take a slot if one is free. A refusal is counted here, in the same lock."""
        capacity = self.capacity
        with self._lock:
            if self._in_flight >= capacity:
                self._refused += 1
                return False
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)
            now = self._by_source.get(source, 0) + 1
            self._by_source[source] = now
            self._peak_by_source[source] = max(self._peak_by_source.get(source, 0), now)
            return True

    def leave(self, source: str = "") -> None:
        with self._lock:
            if self._in_flight <= 0 or self._by_source.get(source, 0) <= 0:
                raise RuntimeError("leave() without a matching try_enter()")
            self._in_flight -= 1
            self._by_source[source] -= 1

    def record_fulfilled(self) -> None:
        with self._lock:
            self._fulfilled += 1

    def snapshot(self) -> AdmissionStats:
        capacity = self.capacity
        with self._lock:
            return AdmissionStats(
                capacity=capacity,
                in_flight=self._in_flight,
                peak_in_flight=self._peak,
                fulfilled=self._fulfilled,
                refused=self._refused,
                since=self._since,
                peak_in_flight_by_source=dict(self._peak_by_source),
                in_flight_by_source={k: v for k, v in self._by_source.items() if v},
            )

    def reset(self) -> AdmissionStats:
        """Start a new statistics window; returns the stats right after the reset."""
        with self._lock:
            self._peak = self._in_flight
            self._peak_by_source = {k: v for k, v in self._by_source.items() if v}
            self._fulfilled = 0
            self._refused = 0
            self._since = datetime.now(UTC)
        return self.snapshot()


_admission: Admission | None = None
_admission_lock = threading.Lock()


def admission_get() -> Admission:
    """The process-wide gate, built on first use from settings.WAREHOUSE_CAPACITY;
    the `warehouse.capacity` fault replaces it while in force (warehouse/faults.py)."""
    global _admission
    if _admission is None:
        with _admission_lock:
            if _admission is None:
                _admission = Admission(
                    capacity=settings.WAREHOUSE_CAPACITY, capacity_now=capacity_now
                )
    return _admission


def source_of(order_ref: str) -> str:
    """`MU` of `MU-7KQ2...`: who sent the order (the ref's prefix), for the stats."""
    prefix, dash, _ = order_ref.partition("-")
    return prefix[:8] if dash and prefix.isalnum() else "other"
