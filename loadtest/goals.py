"""The sale's goals (issue 13), each checked against one run's summary.

Every goal is {"goal", "met" (True, False, or None when this run cannot tell),
"figure"}. Speed goals are what a default `make sale` on the 2-core machine aims at;
a miniature run (tests) is judged by the invariants only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

INVARIANTS = ("lost", "duplicated", "oversold")
STRANGLER_RATIO_GOAL = 2.0
LEGACY_RATIO_GOAL = 10.0
ACCEPT_P99_GOAL_MS = 100.0
# The strangler's accept p99 at most this share of the legacy's.
ACCEPT_SHARE_OF_LEGACY = 1 / 20
DRAIN_TOLERANCE = 0.15
TOURNEY_SAMPLES_GOAL = 1000
RUN_SECONDS_GOAL = 300.0
# The warehouse's order refs: MU- from the orders service's queue, LF- the shop's.
QUEUE_SOURCE = "MU"

Goal = Callable[[str, bool | None, str], None]


def goals(summary: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def goal(text: str, met: bool | None, figure: str) -> None:
        out.append({"goal": text, "met": met, "figure": figure})

    modes = summary["modes"]
    if "strangler" in modes:
        _strangler(goal, modes["strangler"], modes.get("legacy"))
    if "legacy" in modes:
        _legacy(goal, modes["legacy"])
    for mode, figures in modes.items():
        _everywhere(goal, mode, figures)
    seconds = summary["run"].get("seconds")
    if seconds is not None:
        # With --repeat N, the goal is a round's (both modes once): the run's mean.
        rounds = max(1, int(summary["run"].get("repeat") or 1))
        figure = f"{seconds:.0f} s"
        if rounds > 1:
            figure = f"{seconds / rounds:.0f} s a round ({seconds:.0f} s for {rounds})"
        goal(
            f"the whole run within {RUN_SECONDS_GOAL:.0f} s",
            seconds / rounds <= RUN_SECONDS_GOAL,
            figure,
        )
    return out


def _ratio_figure(block: dict[str, Any]) -> str:
    ci = block.get("ci95")
    interval = f", 95 % CI {ci[0]}–{ci[1]}" if ci else ""
    return (
        f"{block.get('ratio')}×{interval} (samples: baseline "
        f"{block.get('baseline_samples')}, sale {block.get('sale_samples')})"
    )


def _strangler(goal: Goal, s: dict[str, Any], legacy: dict[str, Any] | None) -> None:
    p99 = s["muskie_accept"]["p99_ms"]
    legacy_p99 = legacy["muskie_accept"]["p99_ms"] if legacy else None
    share_ok = (
        None
        if not legacy_p99 or p99 is None
        else p99 <= legacy_p99 * ACCEPT_SHARE_OF_LEGACY
    )
    goal(
        f"strangler: Muskie accept p99 from when due ≤ {ACCEPT_P99_GOAL_MS:.0f} ms "
        "and ≤ 1/20 of legacy",
        None if p99 is None else p99 <= ACCEPT_P99_GOAL_MS and share_ok is not False,
        f"{p99} ms (legacy {legacy_p99} ms)",
    )
    allocation = s.get("allocation") or {}
    goal(
        "strangler: all the allocation sold within the rush (≤ units / arrival rate "
        "+ 2 s)",
        allocation.get("within_goal"),
        f"{allocation.get('sold')} of {allocation.get('units')}, the last after "
        f"{allocation.get('last_sold_after_s')} s (goal {allocation.get('goal_s')} s)",
    )
    ratio = s.get("tourney_ratio") or {}
    r = ratio.get("ratio")
    goal(
        f"strangler: Tourney p99 during the sale ≤ {STRANGLER_RATIO_GOAL:g}× its "
        "baseline",
        None if r is None else r <= STRANGLER_RATIO_GOAL,
        _ratio_figure(ratio),
    )
    units = (s.get("allocation") or {}).get("units") or 0
    # In orders, as the sale board counts them (queued + in the warehouse): the
    # relay bundles several orders into one Celery message, so the list's length
    # (peak_depth, messages) understates the buffer.
    waiting = s["queue"].get("peak_waiting") or 0
    goal(
        "strangler: the queue's peak depth ≥ half the units (orders waiting)",
        None if not units else waiting >= units / 2,
        f"peak {waiting} orders waiting ({s['queue']['peak_depth']} messages), "
        f"units {units}",
    )
    w = s["warehouse"]
    queued = w.get("peak_in_flight_by_source", {}).get(QUEUE_SOURCE, 0)
    goal(
        "strangler: the queue's own orders (MU-) in the warehouse ≤ its concurrency, "
        "0 refused",
        queued <= w["fulfillment_concurrency"] and w["refused"] == 0,
        f"MU peak {queued} (concurrency {w['fulfillment_concurrency']}), by source "
        f"{w.get('peak_in_flight_by_source', {})}, refused {w['refused']}",
    )
    drain = s.get("drain") or {}
    d = drain.get("ratio")
    goal(
        f"strangler: drain rate within ±{DRAIN_TOLERANCE:.0%} of the configured",
        None if d is None else abs(d - 1) <= DRAIN_TOLERANCE,
        f"{drain.get('measured_per_s')}/s measured, "
        f"{drain.get('configured_per_s')}/s configured "
        f"({drain.get('orders_in_backlog')} orders packed in "
        f"{drain.get('backlog_seconds')} s of backlog)",
    )


def _legacy(goal: Goal, legacy: dict[str, Any]) -> None:
    ratio = legacy.get("tourney_ratio") or {}
    r = ratio.get("ratio")
    goal(
        f"legacy shows the problem: Tourney p99 during the sale ≥ "
        f"{LEGACY_RATIO_GOAL:g}× its baseline",
        None if r is None else r >= LEGACY_RATIO_GOAL,
        _ratio_figure(ratio),
    )


def _everywhere(goal: Goal, mode: str, figures: dict[str, Any]) -> None:
    o = figures["orders"]
    goal(
        f"{mode}: no order lost, duplicated or oversold",
        not any(o[k] for k in INVARIANTS)
        and not any(figures["tourney_orders"][k] for k in INVARIANTS),
        f"lost {o['lost']}, duplicated {o['duplicated']}, oversold {o['oversold']}",
    )
    n = (figures.get("tourney_ratio") or {}).get("sale_samples")
    goal(
        f"{mode}: ≥ {TOURNEY_SAMPLES_GOAL:,} Tourney samples in the sale window",
        None if n is None else n >= TOURNEY_SAMPLES_GOAL,
        f"{n}",
    )
