"""When each open-loop request is due, and latency counted from then.

An open-loop generator sends each request when it is due, whether or not the ones
before it have been answered, and times it from that moment: a server that falls
behind shows its backlog as latency instead of slowing the generator down (no
coordinated omission). Closed-loop users, Locust's, wait for an answer before asking
again, so a slow server quietly gets fewer requests and the waits are never counted.
"""

from __future__ import annotations

import random

PROCESSES = ("uniform", "poisson")


def arrival_schedule(
    *,
    count: int,
    rate: float,
    start: float,
    process: str = "uniform",
    seed: int | None = None,
) -> list[float]:
    """When each of `count` arrivals is due, at `rate` a second from `start`.

    uniform: one every 1/rate seconds, the first at `start`; poisson: gaps drawn from
    an exponential of mean 1/rate (`seed` makes it repeatable), the first at `start`.
    """
    if count < 0 or rate <= 0:
        raise ValueError(f"count {count} and rate {rate}: need count ≥ 0, rate > 0")
    if process == "uniform":
        return [start + i / rate for i in range(count)]
    if process != "poisson":
        raise ValueError(f"arrival process {process!r} is not one of {PROCESSES}")
    draw = random.Random(seed)
    due, at = [], start
    for _ in range(count):
        due.append(at)
        at += draw.expovariate(rate)
    return due


def fixed_rate_schedule(*, rate: float, start: float, end: float) -> list[float]:
    """A request every 1/rate seconds from `start`, the last one before `end`."""
    if rate <= 0:
        raise ValueError(f"rate {rate}: need rate > 0")
    count = max(0, int((end - start) * rate - 1e-9) + 1) if end > start else 0
    return [start + i / rate for i in range(count)]


def latency_from_due_ms(*, due: float, answered: float) -> float:
    """Milliseconds from when a request was due to its answer (never negative: a
    request sent early, which the scheduler never does, counts from when it left)."""
    return max(0.0, (answered - due) * 1000.0)
