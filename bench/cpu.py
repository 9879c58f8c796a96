"""CPU time of the servers a benchmark measures."""

from __future__ import annotations

import psutil


def cpu_seconds(pids: list[int]) -> float:
    """CPU time of server processes and all their children (user + system)."""
    total = 0.0
    for pid in pids:
        parent = psutil.Process(pid)
        for proc in [parent, *parent.children(recursive=True)]:
            try:
                times = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
    return total
