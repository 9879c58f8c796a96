"""The sale's phases, in seconds from the start of the load (no Locust, no gevent:
the open-loop generator and the report read them too).

warmup     not measured: new connections, first renders, cold caches
baseline   no sale: the Tourney page's reference
open loop (the default):
  arrivals   the Muskie buyers arrive, `buyers` of them at `arrival_rate` a second
  after      no more arrivals; the queue drains while the Tourney page is watched
closed loop (--closed-loop):
  ramp       Locust's Muskie buyers: 0 → peak within `ramp_seconds`
  hold       the peak
  fade       they leave, linearly

The sale window (the Tourney page's "during the sale") runs from the first phase
after the baseline to the end of the last.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loadtest.config import LoadOptions

# Before the sale: browsers only (Tourney buyers are there, waiting for the sale).
QUIET = frozenset({"warmup", "baseline"})


@dataclass(frozen=True)
class Phase:
    name: str
    start: float
    end: float


def phases(options: LoadOptions) -> list[Phase]:
    """The phases' boundaries, in seconds from the start of the load."""
    sale: list[tuple[str, float]] = (
        [
            ("ramp", options.ramp_seconds),
            ("hold", options.hold_seconds),
            ("fade", options.fade_seconds),
        ]
        if options.closed_loop
        else [("arrivals", options.arrival_seconds), ("after", options.after_seconds)]
    )
    spans = [
        ("warmup", options.warmup_seconds),
        ("baseline", options.baseline_seconds),
        *sale,
    ]
    out, start = [], 0.0
    for name, seconds in spans:
        out.append(Phase(name, start, start + seconds))
        start += seconds
    return out


def phase_at(options: LoadOptions, elapsed: float) -> str:
    for phase in phases(options):
        if elapsed < phase.end:
            return phase.name
    return "done"


def sale_window(windows: Sequence[Mapping[str, Any]]) -> tuple[float, float]:
    """(start, end) of the sale in a phases.json's wall-clock `phases` list."""
    sale = [w for w in windows if w["name"] not in QUIET]
    return float(sale[0]["start"]), float(sale[-1]["end"])


def window_of(windows: Sequence[Mapping[str, Any]], name: str) -> tuple[float, float]:
    (found,) = [w for w in windows if w["name"] == name]
    return float(found["start"]), float(found["end"])
