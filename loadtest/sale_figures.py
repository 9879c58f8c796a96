"""The figures an open-loop sale is judged by, beside the latency ones (collect.py):

- **allocation**: units sold, and when the last one was (seconds from the first
  arrival), against the rush's length: units / arrival rate + 2 s;
- **Tourney ratio**: the Tourney page's p99 during the sale over its baseline p99,
  with both sample counts and a 95 % bootstrap interval;
- **drain**: the queue's orders (`MU-`) packed a second by the warehouse while the
  queue held a backlog (more orders waiting than the workers take at once), measured
  (the slope of their fulfilments over time) against the configured rate
  (FULFILLMENT_CONCURRENCY / WAREHOUSE_HANDLING_MS). Without a backlog the workers
  wait for orders, and the rate says how fast orders came, not how fast they drain;
  then there is no figure;
- **generator**: each load process's own CPU seconds (what it costs to make the load).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from loadtest.goals import QUEUE_SOURCE
from loadtest.journal import Attempt, Sample
from loadtest.phases import sale_window, window_of
from loadtest.stats import bootstrap_ratio, drain_rate, is_tourney, percentile, ratio

# The rush may run this long past units / arrival rate and still count as "within".
SOLD_WITHIN_SLACK_SECONDS = 2.0


def allocation_figures(
    *,
    attempts: Sequence[Attempt],
    phases: Mapping[str, Any],
    orders: Mapping[str, Any],
    options: Mapping[str, Any],
) -> dict[str, Any]:
    """How much of the allocation sold, and when the last unit was (open loop)."""
    sale_start = sale_window(phases["phases"])[0]
    accepted_at = [
        a.started + a.latency_ms / 1000
        for a in attempts
        if a.kind == "muskie" and a.outcome == "accepted"
    ]
    units, sold = orders.get("allocation"), orders.get("units_sold", 0)
    rate = float(options.get("arrival_rate") or 0)
    open_loop = not options.get("closed_loop") and rate > 0
    goal = (
        round(units / rate + SOLD_WITHIN_SLACK_SECONDS, 2)
        if open_loop and units
        else None
    )
    sold_out = bool(units) and sold >= units
    last = round(max(accepted_at) - sale_start, 2) if accepted_at else None
    return {
        "units": units,
        "sold": sold,
        "sold_out": sold_out,
        # Seconds from the first arrival to the last accepted answer.
        "last_sold_after_s": last,
        "goal_s": goal,
        "within_goal": (
            None
            if goal is None
            else bool(sold_out and last is not None and last <= goal)
        ),
    }


def tourney_ratio(
    samples: Sequence[Sample], phases: Mapping[str, Any]
) -> dict[str, Any]:
    """The Tourney page's p99, sale over baseline, with the samples behind it."""
    base = window_of(phases["phases"], "baseline")
    sale = sale_window(phases["phases"])

    def times(window: tuple[float, float]) -> list[float]:
        return [
            s[3] for s in samples if is_tourney(s[1]) and window[0] <= s[0] < window[1]
        ]

    baseline_ms, sale_ms = times(base), times(sale)
    interval = bootstrap_ratio(sale_ms, baseline_ms, q=99)
    return {
        "ratio": ratio(percentile(sale_ms, 99), percentile(baseline_ms, 99)),
        "ci95": list(interval) if interval else None,
        "baseline_samples": len(baseline_ms),
        "sale_samples": len(sale_ms),
    }


def epoch(iso: str) -> float:
    """Seconds since the epoch of an ISO 8601 time (`Z` or an offset)."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def backlog_window(
    watch: Sequence[Mapping[str, Any]], *, concurrency: int
) -> tuple[float, float] | None:
    """From the first to the last look at the stack that saw more orders waiting
    than the workers take at once (the sale board's queued + in the warehouse)."""
    busy = [float(w["at"]) for w in watch if int(w.get("waiting", 0)) > concurrency]
    return (busy[0], busy[-1]) if busy else None


def drain_figures(
    *,
    fulfilments: Sequence[Mapping[str, Any]],
    concurrency: int,
    handling_ms: int | None,
    watch: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The queue's orders packed a second while it held a backlog: measured,
    configured, their ratio."""
    window = backlog_window(watch, concurrency=concurrency)
    done_at = [
        epoch(str(f["created_at"]))
        for f in fulfilments
        if str(f["order_ref"]).startswith(f"{QUEUE_SOURCE}-")
    ]
    during = [t for t in done_at if window[0] <= t <= window[1]] if window else []
    measured = drain_rate(during)
    configured = round(concurrency * 1000 / handling_ms, 2) if handling_ms else None
    return {
        "orders": len(done_at),
        # The queue's orders packed while it held a backlog (the rate's sample).
        "orders_in_backlog": len(during),
        "backlog_seconds": round(window[1] - window[0], 2) if window else 0.0,
        "measured_per_s": measured,
        "configured_per_s": configured,
        "ratio": ratio(measured, configured),
    }


def generator_figures(phases: Mapping[str, Any]) -> dict[str, Any]:
    """Each crowd's process: CPU seconds, wall seconds, requests."""
    crowds = phases.get("crowds", {})
    out = {crowd: dict(p.get("generator") or {}) for crowd, p in crowds.items()}
    total = sum(float(g.get("cpu_seconds", 0)) for g in out.values())
    return {"crowds": out, "cpu_seconds": round(total, 2)}
