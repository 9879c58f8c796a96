"""CPU time of the servers a benchmark measures."""

from __future__ import annotations

import psutil


def cpu_split(pids: list[int]) -> tuple[float, float]:
    """(user, system) CPU seconds of server processes and all their children."""
    user = system = 0.0
    for pid in pids:
        parent = psutil.Process(pid)
        for proc in [parent, *parent.children(recursive=True)]:
            try:
                times = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            user += times.user
            system += times.system
    return user, system


def cpu_seconds(pids: list[int]) -> float:
    """CPU time of server processes and all their children (user + system)."""
    return sum(cpu_split(pids))
