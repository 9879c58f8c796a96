"""The sale report's slowest Tourney requests: a link to each one's trace, and where
its time went.

Every watched Tourney request's sample keeps the answer's `X-Trace-Id`
(loadtest/journal.py). After the run, the slowest of each mode's sale window (ramp to
fade) are listed in `traces/slowest-requests.json`, and `manage.py traces slowest`
(observability/slowest.py: the load test reads the trace store only through
manage.py) writes a trace view of each (`traces/slowest/<trace_id>/index.html`, the
report's own, as `make traces` draws them) and their segments
(`traces/slowest/slowest-segments.json`). The report lists them, each linked to its
view, in a table of segments in milliseconds.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadtest.context import RunContext
from loadtest.journal import Sample, samples_read
from loadtest.operations import manage
from loadtest.phases import sale_window
from loadtest.stats import is_tourney

SLOWEST_COUNT = 5
SLOWEST_DIR = "traces/slowest"
REQUESTS_FILE = "traces/slowest-requests.json"
# The table's columns whatever they hold; Redis and "other" only when they hold time.
ALWAYS_SHOWN = ("outside", "edge", "waiting", "shop", "postgresql", "warehouse")


def slowest_pick(
    samples: Sequence[Sample], *, start: float, end: float, count: int = SLOWEST_COUNT
) -> list[dict[str, Any]]:
    """The `count` slowest Tourney requests between `start` and `end` that name
    their trace, slowest first."""
    chosen = [s for s in samples if is_tourney(s[1]) and start <= s[0] < end and s[5]]
    chosen.sort(key=lambda s: s[3], reverse=True)
    return [
        {"trace_id": s[5], "ms": s[3], "start": s[0], "status": s[2]}
        for s in chosen[:count]
    ]


def _sale_window(mode_dir: Path) -> tuple[float, float]:
    # The run's own definition of the sale (open loop: arrivals and after; the
    # closed loop: ramp to fade), as the figures and charts take it.
    phases = json.loads((mode_dir / "phases.json").read_text())
    return sale_window(phases["phases"])


def slowest_requests_write(report_dir: Path, modes: Sequence[str]) -> Path:
    """Each mode's slowest Tourney requests of the sale, as `traces slowest` reads
    them."""
    requests: dict[str, list[dict[str, Any]]] = {}
    for mode in modes:
        mode_dir = report_dir / mode
        start, end = _sale_window(mode_dir)
        samples = samples_read(mode_dir / "samples.csv")
        requests[mode] = slowest_pick(samples, start=start, end=end)
    path = report_dir / REQUESTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(requests, indent=1) + "\n")
    return path


def slowest_explain(
    report_dir: Path, modes: Sequence[str], *, env: dict[str, str]
) -> dict[str, Any]:
    """`traces slowest` on each mode's slowest Tourney requests: what it wrote, or
    why there is nothing."""
    requests = slowest_requests_write(report_dir, modes)
    target = report_dir / SLOWEST_DIR
    try:
        done = manage(
            "traces", "slowest", "--requests", str(requests), "--report", str(target),
            env=env, timeout=300,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": "`traces slowest` did not finish in 300 s"}
    out = target / "slowest-segments.json"
    if done.code != 0 or not out.exists():
        error = (done.stderr or done.stdout).strip().splitlines()
        return {"ok": False, "error": error[-1] if error else f"exit {done.code}"}
    return {"ok": True, **json.loads(out.read_text())}


def slowest_collect(ctx: RunContext) -> dict[str, Any]:
    """The run's slowest Tourney requests explained (for summary.json)."""
    ctx.say("traces: the slowest Tourney requests of each mode (`traces slowest`)")
    return slowest_explain(ctx.report_dir, ctx.options.modes, env=ctx.env)


def _ms(value: float) -> str:
    return f"{value:,.1f}"


def slowest_markdown(slowest: dict[str, Any] | None) -> list[str]:
    """The report's section: per mode, the slowest requests linked to their trace
    views, with a column of milliseconds per segment."""
    if not slowest:
        return ["No slowest requests: traces were not collected."]
    if not slowest.get("ok"):
        return [f"No slowest requests: {slowest.get('error', 'unknown')}."]
    rows_all = [row for rows in slowest["modes"].values() for row in rows]
    segments: dict[str, str] = {
        key: label
        for key, label in slowest["segments"].items()
        if key in ALWAYS_SHOWN
        or any(row.get("segments_ms", {}).get(key) for row in rows_all)
    }
    lines = [
        "The slowest Tourney page requests of each mode's sale, as the load generator "
        "timed them, each linked to its trace; where their time went, in ms, on each "
        "trace's critical path (`outside the trace`: what the load generator measured "
        "beyond the edge's span; `waiting`: the edge's call open while the origin was "
        "not working on it, e.g. queued for a thread).",
    ]
    for mode, rows in slowest["modes"].items():
        lines += ["", f"**{mode}**", ""]
        if not rows:
            lines.append("No Tourney request of the sale window named its trace.")
            continue
        lines.append("| request | ms | " + " | ".join(segments.values()) + " |")
        lines.append("|---|---|" + "---|" * len(segments))
        for row in rows:
            short = str(row["trace_id"])[:12]
            if row["found"]:
                name = f"[`{short}`]({SLOWEST_DIR}/{row['view']})"
                cells = [_ms(row["segments_ms"][key]) for key in segments]
            else:
                name = f"`{short}`"
                cells = ["not in the trace store"] + [""] * (len(segments) - 1)
            lines.append(f"| {name} | {_ms(row['ms'])} | " + " | ".join(cells) + " |")
    return lines
