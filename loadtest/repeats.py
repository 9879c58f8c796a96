"""`sale run --repeat N`: the modes alternated N times (legacy, strangler, legacy, ...),
each headline figure given as its median and spread (min to max) over the rounds.

One round's figures are noisy on a shared 2-core machine; the median of three is what
the README quotes.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

# name → how to read it off one mode's block of a round's summary.
FIGURES: dict[str, Callable[[dict[str, Any]], float | None]] = {
    "tourney_p99_ratio": lambda m: m["tourney_ratio"]["ratio"],
    "tourney_sale_samples": lambda m: m["tourney_ratio"]["sale_samples"],
    "muskie_accept_p50_ms": lambda m: m["muskie_accept"]["p50_ms"],
    "muskie_accept_p99_ms": lambda m: m["muskie_accept"]["p99_ms"],
    "muskie_sold_out_p99_ms": lambda m: m["muskie_sold_out"]["p99_ms"],
    "allocation_last_sold_after_s": lambda m: m["allocation"]["last_sold_after_s"],
    "queue_peak_depth": lambda m: m["queue"]["peak_depth"],
    # Orders (queued + in the warehouse): a message of the relay's can hold several.
    "queue_peak_waiting": lambda m: m["queue"].get("peak_waiting"),
    "drain_rate_per_s": lambda m: m["drain"]["measured_per_s"],
    "warehouse_refused": lambda m: m["warehouse"]["refused"],
    "generator_cpu_seconds": lambda m: m["generator"]["cpu_seconds"],
}


def spread(values: list[float | None]) -> dict[str, Any]:
    """The values, their median, min and max (None when no round had one)."""
    known = [v for v in values if v is not None]
    if not known:
        return {"values": values, "median": None, "min": None, "max": None}
    return {
        "values": values,
        "median": round(statistics.median(known), 2),
        "min": min(known),
        "max": max(known),
    }


def repeats_block(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per figure and mode, the spread over the rounds' summaries; and the engine
    each round's edge ran (what the figures were measured through)."""
    modes = list(rounds[0]["modes"])
    return {
        "rounds": len(rounds),
        "edge_engines": sorted(
            {
                str(m["edge"]["engine"])
                for r in rounds
                for m in r["modes"].values()
                if m.get("edge")
            }
        ),
        "figures": {
            name: {
                mode: spread([read(r["modes"][mode]) for r in rounds]) for mode in modes
            }
            for name, read in FIGURES.items()
        },
    }


def repeats_markdown(block: dict[str, Any]) -> list[str]:
    figures = block["figures"]
    modes = list(next(iter(figures.values())))
    engines = " and ".join(block.get("edge_engines", [])) or "unknown"
    lines = [
        f"Median [min–max] over {block['rounds']} rounds, modes alternated, the "
        f"edge on the {engines} engine.",
        "",
        "| figure | " + " | ".join(modes) + " |",
        "|---|" + "---|" * len(modes),
    ]
    for name, per_mode in figures.items():
        cells = [
            "–"
            if s["median"] is None
            else f"{s['median']:g} [{s['min']:g}–{s['max']:g}]"
            for s in (per_mode[mode] for mode in modes)
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines
