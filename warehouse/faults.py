"""The faults the warehouse obeys, read live (common/faults.py, `faults set ...`).

Checked on each order before anything is written, so a refused order leaves no row
and takes no packing slot: `warehouse.down` is a 503 (Retry-After: 1), an order
picked by `warehouse.error_rate` a 500; `warehouse.capacity` replaces the gate's
WAREHOUSE_CAPACITY while it lasts and `warehouse.latency_ms` is added to each
order's handling time. The reads cost no I/O (a snapshot kept fresh by a thread).
"""

from __future__ import annotations

import random

from django.conf import settings

from common.faults import faults_live
from warehouse.exceptions import InjectedFailure, WarehouseDown


def fault_gate_check() -> None:
    """Raise what the faults in force say this order meets, if anything."""
    live = faults_live()
    if live.get("warehouse.down"):
        raise WarehouseDown("The warehouse is down (an injected fault). Retry later.")
    rate = live.get("warehouse.error_rate")
    if rate and random.random() < float(rate):  # noqa: S311 - not for secrets
        raise InjectedFailure("The warehouse failed this order (an injected fault).")


def capacity_now() -> int:
    """The gate's capacity: the `warehouse.capacity` fault, else the setting."""
    value = faults_live().get("warehouse.capacity")
    return int(value) if value else int(settings.WAREHOUSE_CAPACITY)


def extra_latency_seconds() -> float:
    value = faults_live().get("warehouse.latency_ms")
    return float(value) / 1000 if value else 0.0
