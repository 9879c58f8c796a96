"""The faults the warehouse obeys, read live (common/faults.py, `faults set ...`).

Checked on each order before anything is written, so a refused order leaves no row
and takes no packing slot: `warehouse.down` is a 503 (Retry-After: 1), an order
picked by `warehouse.error_rate` a 500; `warehouse.capacity` replaces the gate's
WAREHOUSE_CAPACITY while it lasts and `warehouse.latency_ms` is added to each
order's handling time. The reads cost no I/O (a snapshot kept fresh by a thread).
"""

from __future__ import annotations

import random
import threading
from collections import Counter

from django.conf import settings

from common.faults import faults_live
from warehouse.exceptions import InjectedFailure, WarehouseDown

# Orders refused by a fault since the last stats reset, by error code (GET /stats/).
_refused: Counter[str] = Counter()
_refused_lock = threading.Lock()


def _refuse(error: WarehouseDown | InjectedFailure) -> None:
    with _refused_lock:
        _refused[error.code] += 1
    raise error


def fault_gate_check() -> None:
    """Raise what the faults in force say this order meets, if anything."""
    live = faults_live()
    if live.get("warehouse.down"):
        _refuse(
            WarehouseDown("The warehouse is down (an injected fault). Retry later.")
        )
    rate = live.get("warehouse.error_rate")
    if rate and random.random() < float(rate):
        _refuse(InjectedFailure("The warehouse failed this order (an injected fault)."))


def fault_refusals(*, reset: bool = False) -> dict[str, int]:
    """Orders refused by a fault, by code, since the last reset (reset: start anew)."""
    with _refused_lock:
        counts = dict(_refused)
        if reset:
            _refused.clear()
    return counts


def capacity_now() -> int:
    """The gate's capacity: the `warehouse.capacity` fault, else the setting."""
    value = faults_live().get("warehouse.capacity")
    return int(value) if value else int(settings.WAREHOUSE_CAPACITY)


def extra_latency_seconds() -> float:
    value = faults_live().get("warehouse.latency_ms")
    return float(value) / 1000 if value else 0.0
