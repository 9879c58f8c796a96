"""bench.edge's table, ratios and goals, from its wrk figures (one run, one machine).

Goals, checked on ratios measured in the same run:
- the nginx engine (issue 15): throughput at the highest connection count at least
  90 % of a plain nginx proxying the same origin; added p50 at the lowest at most
  0.1 ms over that plain nginx;
- the Python engine (issue 5): added p50 at most 1 ms over the origin, throughput at
  least 50 % of the plain nginx;
- the Python engine on a real page (issue 15, with --real-page): CPU per request at
  most 2x its figure on the small origin at the same open-loop rate (the worst of
  `--real-rates` and both connection kinds; idle CPU taken out);
- the traced Python engine (issue 14, unless --no-traced): at the route table's
  default ratio, CPU per request at most 1.10x the untraced edge's at the highest
  connection count.
"""

from __future__ import annotations

import os
import platform
from typing import Any

Results = dict[str, dict[int, dict[str, float]]]

GOAL_ENGINE_SHARE = 0.9
GOAL_ENGINE_ADDED_P50_MS = 0.1
GOAL_PYTHON_ADDED_P50_MS = 1.0
GOAL_PYTHON_SHARE = 0.5
GOAL_REAL_PAGE_CPU_RATIO = 2.0
GOAL_TRACED_CPU_RATIO = 1.10


def table_print(results: Results) -> None:
    print()
    print(
        f"{'target':<13} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'CPU us/req':>10}"
    )
    print("-" * 58)
    for name, by_count in results.items():
        for count, f in by_count.items():
            cpu = f.get("cpu_us_per_request")
            cpu_text = f"{cpu:>10.0f}" if cpu is not None else f"{'':>10}"
            print(
                f"{name:<13} {count:>5} {f['rps']:>9.0f} {f['p50_ms']:>8.3f} "
                f"{f['p99_ms']:>8.3f} {cpu_text}"
            )
    print()


def _goal(goal: float, measured: float, at: str, *, most: bool) -> dict[str, Any]:
    met = measured <= goal if most else measured >= goal
    return {"goal": goal, "measured": round(measured, 4), "met": met, "at": at}


def goals_check(
    results: Results,
    connections: list[int],
    at_rates: dict[str, Any] | None = None,
) -> dict[str, Any]:
    low, high = min(connections), max(connections)
    plain, origin = results["plain_nginx"], results["origin"]
    goals: dict[str, Any] = {}
    if "nginx_engine" in results:
        engine = results["nginx_engine"]
        goals["engine_share_of_plain_nginx_rps"] = _goal(
            GOAL_ENGINE_SHARE, engine[high]["rps"] / plain[high]["rps"], f"c{high}",
            most=False,
        )  # fmt: skip
        goals["engine_added_p50_ms_over_plain_nginx"] = _goal(
            GOAL_ENGINE_ADDED_P50_MS,
            engine[low]["p50_ms"] - plain[low]["p50_ms"], f"c{low}", most=True,
        )  # fmt: skip
    if "edge" in results:
        edge = results["edge"]
        goals["python_added_p50_ms"] = _goal(
            GOAL_PYTHON_ADDED_P50_MS, edge[low]["p50_ms"] - origin[low]["p50_ms"],
            f"c{low}", most=True,
        )  # fmt: skip
        goals["python_share_of_plain_nginx_rps"] = _goal(
            GOAL_PYTHON_SHARE, edge[high]["rps"] / plain[high]["rps"], f"c{high}",
            most=False,
        )  # fmt: skip
    if "edge_traced" in results and "edge" in results:
        goals["traced_cpu_ratio"] = _goal(
            GOAL_TRACED_CPU_RATIO,
            results["edge_traced"][high]["cpu_us_per_request"]
            / results["edge"][high]["cpu_us_per_request"],
            f"c{high}", most=True,
        )  # fmt: skip
    if at_rates and at_rates["real_over_small_busy_cpu"]:
        # At equal open-loop rates, the worst of them (bench/edge_open_loop.py).
        ratios = at_rates["real_over_small_busy_cpu"]
        worst = max(ratios, key=ratios.__getitem__)
        goals["python_real_page_cpu_ratio"] = _goal(
            GOAL_REAL_PAGE_CPU_RATIO, ratios[worst],
            f"{worst} open loop, vs the small origin at the same", most=True,
        )  # fmt: skip
    for name, goal in goals.items():
        verdict = "met" if goal["met"] else "NOT met"
        print(
            f"goal {name} ({goal['at']}): {goal['measured']:.3f} vs {goal['goal']} "
            f"-> {verdict}"
        )
    return goals


def added(results: Results) -> dict[str, dict[str, float]]:
    """p50/p99 each proxy adds over what it proxies, per connection count."""
    out: dict[str, dict[str, float]] = {}
    for name, by_count in results.items():
        base = "real_origin" if name.startswith("real_") else "origin"
        if name in ("origin", "real_origin") or base not in results:
            continue
        for count, f in by_count.items():
            under = results[base].get(count)
            if under is None:
                continue
            out.setdefault(name, {})[f"c{count}_added_p50_ms"] = round(
                f["p50_ms"] - under["p50_ms"], 3
            )
            out[name][f"c{count}_added_p99_ms"] = round(
                f["p99_ms"] - under["p99_ms"], 3
            )
    return out


def summarise(
    results: Results,
    connections: list[int],
    described: dict[str, str],
    at_rates: dict[str, Any] | None = None,
) -> dict[str, Any]:
    table_print(results)
    goals = goals_check(results, connections, at_rates)
    return {
        "benchmark": "edge",
        **described,
        "results": {n: {f"c{c}": v for c, v in r.items()} for n, r in results.items()},
        "real_page_at_rates": at_rates,
        "added": added(results),
        "goals": goals,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            # Other work on the machine moves the figures: report it with them.
            "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        },
    }
