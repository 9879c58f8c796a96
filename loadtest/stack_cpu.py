"""Where the stack's CPU went during a mode's load: each part's processes, read from
/proc (psutil: user + system time), from the first customer to the end of the drain.

A process belongs to the part whose Procfile command it runs, or that one of its
ancestors runs (gunicorn's workers, nginx's under the edge's control plane), when
that process's working directory is this checkout: another checkout's stack on the
same machine is not counted. PostgreSQL and Redis serve every stack on the machine
and are left out; so are processes that exited during the load (a killed one's time
goes with it). Under docker compose nothing is found and the figure is absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil

# Part -> what its Procfile command line holds.
PARTS: tuple[tuple[str, str], ...] = (
    ("edge", "edge_router"),
    ("shop", "shop.wsgi"),
    ("warehouse", "warehouse.wsgi"),
    ("orders", "orders_api.asgi"),
    ("relay", "outbox_relay"),
    ("orders-worker", "orders_api.celery_app"),
    ("fulfillment-worker", "fulfillment_queue.celery_app"),
)
# The new path's parts (the sale path's CPUs, SALE_PATH_CPUS).
NEW_PATH = ("orders", "relay", "orders-worker", "fulfillment-worker")


def _part_of(process: psutil.Process, root: str) -> str | None:
    try:
        line = " ".join(process.cmdline())
        for part, token in PARTS:
            if token in line:
                return part if process.cwd() == root else None
    except psutil.Error:
        return None
    return None


def stack_cpu_read(root: Path) -> dict[str, float]:
    """CPU seconds each part's live processes have used so far."""
    totals = dict.fromkeys((part for part, _ in PARTS), 0.0)
    where = str(root)
    for process in psutil.process_iter():
        part = _part_of(process, where)
        try:
            if part is None:
                part = next(
                    filter(None, (_part_of(up, where) for up in process.parents())),
                    None,
                )
            if part is None:
                continue
            times = process.cpu_times()
        except psutil.Error:  # gone while we looked
            continue
        totals[part] += times.user + times.system
    return totals


def stack_cpu_figures(
    before: Mapping[str, float],
    after: Mapping[str, float],
    *,
    seconds: float,
    accepted: int,
) -> dict[str, Any] | None:
    """Each part's CPU seconds over the load, its share of one core, and the new
    path's CPU per accepted order; None when no part of the stack was found."""
    used = {part: round(max(after[part] - before.get(part, 0.0), 0.0), 2)
            for part in after}  # fmt: skip
    if not any(used.values()) or seconds <= 0:
        return None
    new_path = sum(used[part] for part in NEW_PATH)
    return {
        "seconds": round(seconds, 1),
        "cpu_seconds": used,
        "core_share": {part: round(cpu / seconds, 3) for part, cpu in used.items()},
        "new_path_cpu_seconds": round(new_path, 2),
        "new_path_ms_per_accepted": round(1000 * new_path / accepted, 1)
        if accepted
        else None,
    }
