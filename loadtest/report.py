"""The sale run's report: summary.json (the contract), summary.md, the terminal table.

summary.json keeps these keys (other tools read them); more may be added beside them:

    {"modes": {"legacy"|"strangler": {
        "baseline": {"tourney": {requests, failures, rps, p50_ms, p95_ms, p99_ms}},
        "sale": {"tourney": {...}, "browse": {...}, "muskie_buy": {...}},
        "orders": {attempted, accepted, sold_out, rejected, fulfilled, failed,
                   lost, duplicated, oversold},
        "warehouse": {capacity, peak_in_flight, refused},
        "queue": {peak_depth}, "drain_seconds"}},
     "headline": {tourney_p99_ratio_legacy, tourney_p99_ratio_strangler,
                  muskie_accept_p99_ms_legacy, muskie_accept_p99_ms_strangler}}
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loadtest.config import CROWDS
from loadtest.faults_report import faults_markdown
from loadtest.goals import INVARIANTS, goals
from loadtest.repeats import repeats_markdown
from loadtest.slowest import slowest_markdown
from loadtest.stack_cpu import PARTS

GENERATOR_CROWDS = CROWDS
# The stack's parts as the summary lists their CPU (loadtest/stack_cpu.py).
CPU_PARTS = tuple(part for part, _ in PARTS)

ORDER_KEYS = (
    "attempted", "accepted", "sold_out", "rejected", "fulfilled", "failed",
    "lost", "duplicated", "oversold",
)  # fmt: skip


def summary_build(
    results: dict[str, dict[str, Any]],
    *,
    run: dict[str, Any],
    traces: dict[str, Any] | None,
) -> dict[str, Any]:
    modes: dict[str, Any] = {}
    headline: dict[str, Any] = {}
    for mode, result in results.items():
        figures = result["figures"]
        orders = result["orders"]
        modes[mode] = {
            "baseline": figures["baseline"],
            "sale": figures["sale"],
            "orders": {
                **{key: orders[key] for key in ORDER_KEYS},
                "unconfirmed": orders["unconfirmed"],
                "sold_out_page": orders["sold_out_page"],
                "rejected_by_status": orders["rejected_by_status"],
                "units_sold": orders["units_sold"],
                "allocation": orders["allocation"],
                "problems": orders["problems"],
            },
            "tourney_orders": {
                key: result["tourney_orders"][key]
                for key in (
                    *ORDER_KEYS[:3],
                    "rejected",
                    "fulfilled",
                    *INVARIANTS,
                    "unconfirmed",
                    "problems",
                )
            },
            "warehouse": {
                **result["warehouse"],
                "fulfillment_concurrency": run["fulfillment_concurrency"],
            },
            "queue": result["queue"],
            "drain_seconds": result["drain_seconds"],
            "drained": result["drained"],
            "muskie_accept": figures["muskie_accept"],
            "muskie_sold_out": figures["muskie_sold_out"],
            "allocation": result["allocation"],
            "tourney_ratio": result["tourney_ratio"],
            "drain": result["drain"],
            "generator": result["generator"],
            "load_average": result["load_average"],
            "stack_cpu": result.get("stack_cpu"),
            "phases": result["phases"],
            "run_tag": result["run_tag"],
            # What answered the public port as the mode's load ended.
            "edge": result.get("edge"),
            "faults": result.get("faults"),
        }
        headline[f"tourney_p99_ratio_{mode}"] = result["tourney_ratio"]["ratio"]
        headline[f"muskie_accept_p99_ms_{mode}"] = figures["muskie_accept"]["p99_ms"]
    for mode in ("legacy", "strangler"):
        headline.setdefault(f"tourney_p99_ratio_{mode}", None)
        headline.setdefault(f"muskie_accept_p99_ms_{mode}", None)
    summary: dict[str, Any] = {"modes": modes, "headline": headline, "run": run}
    summary["goals"] = goals(summary)
    summary["traces"] = _traces_digest(traces)
    return summary


def invariants_broken(summary: dict[str, Any]) -> list[str]:
    broken = []
    for mode, figures in summary["modes"].items():
        for block in ("orders", "tourney_orders"):
            for key in INVARIANTS:
                if figures[block][key]:
                    what = "Muskie" if block == "orders" else "Tourney"
                    broken.append(f"{mode}: {figures[block][key]} {what} {key}")
    return broken + list(summary.get("repeats", {}).get("invariants_broken", []))


def _traces_digest(traces: dict[str, Any] | None) -> dict[str, Any]:
    if traces is None:
        return {"ok": False, "error": "not asked for (--no-traces)"}
    # Whether every purchase has one complete trace (`traces sale` fails if not),
    # and the slowest Tourney requests with their traces (loadtest/slowest.py).
    completeness = traces.get("completeness", {})
    slowest = traces.get("slowest")
    if not traces.get("ok"):
        error = traces.get("error", "unknown")
        return {
            "ok": False,
            "error": error,
            "completeness": completeness,
            "slowest": slowest,
        }
    return {
        "ok": True,
        "traces": traces.get("traces", 0),
        "source": traces.get("source", ""),
        "percentiles_ms": traces.get("percentiles_ms", {}),
        "completeness": completeness,
        "slowest": slowest,
    }


# --- the table ----------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def comparison_rows(summary: dict[str, Any]) -> list[tuple[str, ...]]:
    modes = list(summary["modes"])
    m = summary["modes"]
    head = summary["headline"]

    def row(label: str, get: Callable[[dict[str, Any], str], Any]) -> tuple[str, ...]:
        return (label, *(str(get(m[mode], mode)) for mode in modes))

    def t(block: str, phase: str, key: str) -> Callable[[dict[str, Any], str], Any]:
        return lambda f, _: _ms(f[phase][block][key])

    return [
        ("", *modes),
        row("Tourney p50 / p99 baseline (ms)",
            lambda f, _: f"{_ms(f['baseline']['tourney']['p50_ms'])} / "
                         f"{_ms(f['baseline']['tourney']['p99_ms'])}"),
        row("Tourney p50 / p99 sale (ms)",
            lambda f, _: f"{_ms(f['sale']['tourney']['p50_ms'])} / "
                         f"{_ms(f['sale']['tourney']['p99_ms'])}"),
        row("Tourney p99 ratio (sale / baseline), 95 % CI",
            lambda f, mode: f"{head[f'tourney_p99_ratio_{mode}']}×"
                            + _interval(f["tourney_ratio"].get("ci95"))),
        row("Tourney samples: baseline / sale",
            lambda f, _: f"{f['tourney_ratio']['baseline_samples']} / "
                         f"{f['tourney_ratio']['sale_samples']}"),
        row("Tourney page failures in the sale",
            lambda f, _: f"{f['sale']['tourney']['failures']} of "
                         f"{f['sale']['tourney']['requests']}"),
        row("Browse p99 sale (ms)", t("browse", "sale", "p99_ms")),
        row("Muskie buy p50 / p99, all answers (ms)",
            lambda f, _: f"{_ms(f['sale']['muskie_buy']['p50_ms'])} / "
                         f"{_ms(f['sale']['muskie_buy']['p99_ms'])}"),
        row("Muskie accept p50 / p99, from when due (ms)",
            lambda f, _: f"{_ms(f['muskie_accept']['p50_ms'])} / "
                         f"{_ms(f['muskie_accept']['p99_ms'])}"),
        row("Muskie sold out p50 / p99, from when due (ms)",
            lambda f, _: f"{_ms(f['muskie_sold_out']['p50_ms'])} / "
                         f"{_ms(f['muskie_sold_out']['p99_ms'])}"),
        row("Allocation sold, the last after (s)",
            lambda f, _: f"{f['allocation']['sold']} of {f['allocation']['units']}, "
                         f"{f['allocation']['last_sold_after_s']}"
                         + (f" (goal ≤ {f['allocation']['goal_s']})"
                            if f["allocation"]["goal_s"] else "")),
        row("Buy attempts: accepted / sold out / rejected",
            lambda f, _: f"{f['orders']['accepted']} / {f['orders']['sold_out']} / "
                         f"{f['orders']['rejected']}"),
        row("Rejected by status",
            lambda f, _: ", ".join(f"{k}: {v}" for k, v in
                                   sorted(f["orders"]["rejected_by_status"].items()))
                         or "–"),
        row("Fulfilled / failed",
            lambda f, _: f"{f['orders']['fulfilled']} / {f['orders']['failed']}"),
        row("Lost / duplicated / oversold",
            lambda f, _: f"{f['orders']['lost']} / {f['orders']['duplicated']} / "
                         f"{f['orders']['oversold']}"),
        row("Unconfirmed (told error, order made)",
            lambda f, _: f["orders"]["unconfirmed"]),
        row("Warehouse peak in flight / capacity",
            lambda f, _: f"{f['warehouse']['peak_in_flight']} / "
                         f"{f['warehouse']['capacity']}"),
        row("Warehouse peak by caller (MU queue, LF shop)",
            lambda f, _: ", ".join(f"{k} {v}" for k, v in sorted(
                f["warehouse"].get("peak_in_flight_by_source", {}).items())) or "–"),
        row("Warehouse refused", lambda f, _: f["warehouse"]["refused"]),
        row("Queue peak depth / orders waiting",
            lambda f, _: f"{f['queue']['peak_depth']} / {f['queue']['peak_waiting']}"),
        row("Drain (s)", lambda f, _: f"{f['drain_seconds']:.1f}"
            + ("" if f["drained"] else " (timed out)")),
        row("Queue drain rate measured / configured (orders/s)",
            lambda f, _: f"{f['drain']['measured_per_s'] or '–'} / "
                         f"{f['drain']['configured_per_s'] or '–'}"),
        row("Load generator CPU (s): " + " / ".join(GENERATOR_CROWDS),
            lambda f, _: " / ".join(
                str(f["generator"]["crowds"].get(c, {}).get("cpu_seconds", "–"))
                for c in GENERATOR_CROWDS)),
        row("Stack CPU over the load (s): " + " / ".join(CPU_PARTS),
            lambda f, _: " / ".join(
                str(f["stack_cpu"]["cpu_seconds"].get(p, "–")) for p in CPU_PARTS)
            if f.get("stack_cpu") else "–"),
        row("New path CPU per accepted order (ms)",
            lambda f, _: f["stack_cpu"]["new_path_ms_per_accepted"] or "–"
            if f.get("stack_cpu") else "–"),
        row("Load average before → peak (1 min)",
            lambda f, _: f"{f['load_average']['before'][0]} → "
                         f"{f['load_average']['peak_1m']}"),
    ]  # fmt: skip


def _interval(ci: list[float] | None) -> str:
    return f" [{ci[0]}–{ci[1]}]" if ci else ""


def table_text(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def table_markdown(rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |"]
    lines.append("|" + "---|" * len(rows[0]))
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


def _orders_markdown(summary: dict[str, Any]) -> list[str]:
    """One line per mode: what became of the Tourney orders and the Muskie units."""
    lines: list[str] = []
    for mode, f in summary["modes"].items():
        problems = f["orders"]["problems"] + f["tourney_orders"]["problems"]
        tourney = f["tourney_orders"]
        lines.append(
            f"- **{mode}**: Tourney orders accepted {tourney['accepted']}, fulfilled "
            f"{tourney['fulfilled']}, lost {tourney['lost']}, duplicated "
            f"{tourney['duplicated']}; Muskie units sold {f['orders']['units_sold']} "
            f"of {f['orders']['allocation']}."
            + (" Notes: " + "; ".join(problems) if problems else "")
        )
    return lines


def engine_named(summary: dict[str, Any]) -> str:
    """The edge's engine in the run, as each mode's edge said it (`python`, `nginx`,
    or both named when the modes disagree, say the stack restarted between them)."""
    seen = [
        f["edge"]["engine"] for f in summary["modes"].values() if f.get("edge")
    ] or [summary["run"].get("edge_engine", "python")]
    return " then ".join(dict.fromkeys(seen))


def _traces_markdown(summary: dict[str, Any]) -> list[str]:
    """Per mode, the Muskie path's segment percentiles; or why there are none."""
    lines: list[str] = []
    if engine_named(summary) == "nginx":
        lines += [
            "The edge ran the nginx engine, which starts no trace: each trace "
            "starts at the origin, and the edge's own time is in `outside`.",
            "",
        ]
    traces = summary["traces"]
    if traces["ok"]:
        lines.append(
            f"{traces['traces']} traces of the Muskie path ({traces['source']}): "
            "p50 / p95 / p99 per segment (ms)."
        )
        for mode, segments in traces["percentiles_ms"].items():
            lines += ["", f"**{mode}**", "", "| segment | n | p50 | p95 | p99 |",
                      "|---|---|---|---|---|"]  # fmt: skip
            for name, s in segments.items():
                lines.append(
                    f"| {name} | {s['count']} | {s['p50_ms']:.1f} | "
                    f"{s['p95_ms']:.1f} | {s['p99_ms']:.1f} |"
                )
        for mode in summary["modes"]:
            if mode not in traces["percentiles_ms"]:
                lines += ["", f"**{mode}**: no trace of this path in the store "
                          "(its processes exported no spans)."]  # fmt: skip
    else:
        lines.append(f"No trace figures: {traces['error']}.")
    return lines


def markdown(summary: dict[str, Any], charts: list[str]) -> str:
    run, head = summary["run"], summary["headline"]
    lines = [
        f"# Flash sale of the Muskie rod: {', '.join(summary['modes'])}",
        "",
        f"Run {run['started']} → {run['finished']} on {run['cpus']} CPUs "
        f"(the new path's: {run.get('sale_path_cpus', 'off')}), the edge on the "
        f"**{engine_named(summary)}** engine; "
        f"{run['units']} Muskie rods for sale in each mode; load "
        f"{json.dumps(run['load'])}.",
        "",
        table_markdown(comparison_rows(summary)),
        "",
        "Headline: " + ", ".join(f"`{k}` = {v}" for k, v in head.items()),
        "",
        "## Goals",
        "",
    ]
    for g in summary["goals"]:
        mark = {True: "met", False: "**not met**", None: "n/a"}[g["met"]]
        lines.append(f"- {g['goal']}: {mark} ({g['figure']})")
    if "repeats" in summary:
        lines += ["", "## Repeats", ""]
        lines += repeats_markdown(summary["repeats"])
    lines += ["", "## Orders", ""]
    lines += _orders_markdown(summary)
    lines += faults_markdown(summary)
    lines += ["", "## Traces", ""]
    lines += _traces_markdown(summary)
    lines += ["", "## Slowest Tourney requests", ""]
    lines += slowest_markdown(summary["traces"].get("slowest"))
    lines += ["", "## Charts", ""]
    lines += [f"![{name}]({name})" for name in charts]
    lines += [
        "",
        "Per mode and crowd (`shoppers`: browsers and Tourney buyers, the customers "
        "watched; `buyers`: the flash sale's): `<mode>/locust-<crowd>.html` "
        "(Locust's report), `<mode>/locust-<crowd>_*.csv`; per mode: "
        "`<mode>/samples.csv` (every request), `<mode>/attempts.json` (every buy "
        "attempt), `<mode>/reconcile-inputs.json` (the stores and fulfilments "
        "reconciled), `<mode>/watch.json` (warehouse and queue samples).",
    ]
    return "\n".join(lines) + "\n"


def write_all(
    directory: Path,
    summary: dict[str, Any],
    results: dict[str, dict[str, Any]],
    *,
    say: Callable[[str], None],
) -> None:
    from loadtest import charts

    names = charts.write_all(directory, results, summary)
    (directory / "summary.json").write_text(json.dumps(summary, indent=2))
    (directory / "summary.md").write_text(markdown(summary, names))
    say("")
    say(f"the edge ran on the {engine_named(summary)} engine")
    say(table_text(comparison_rows(summary)))
    say("")
    for key, value in summary["headline"].items():
        say(f"{key} = {value}")
    for g in summary["goals"]:
        mark = {True: "met", False: "NOT MET", None: "n/a"}[g["met"]]
        say(f"goal {mark:7}  {g['goal']} ({g['figure']})")
    if not summary["traces"]["ok"]:
        say(f"traces: none in the report ({summary['traces']['error']})")
    say(f"report: {directory / 'summary.md'}")
