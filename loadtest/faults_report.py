"""A mode's faults in the sale: start the schedule, then say what the system did.

`faults_start` plays the mode's schedule (loadtest/faults.py) from the first Muskie
buyer; `faults_outcome` gathers, once the mode is drained: what was injected and
when, the launcher's restarts, the warehouse's refusals (at capacity, and by each
fault), what customers were told (the buy's refusals by status, Tourney failures,
unconfirmed orders), the queue's open dead letters of this mode, and the
reconcile. `faults_markdown` is the report's "Faults" section.
"""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from common import faults
from loadtest.config import LoadOptions
from loadtest.context import RunContext
from loadtest.faults import FaultRun, ScheduledFault, chaos_schedule
from loadtest.operations import manage

RECONCILE_KEYS = ("accepted", "fulfilled", "failed", "lost", "duplicated", "oversold")


def schedule_of(ctx: RunContext, options: LoadOptions) -> list[ScheduledFault]:
    planned = list(ctx.options.faults)
    if ctx.options.chaos:
        planned += chaos_schedule(options.sale_seconds)
    return planned


def sale_start(out: Path) -> float | None:
    """When the first Muskie buyer is due: the end of the baseline (the start of
    the arrivals, or of the closed loop's ramp), as the first crowd process wrote
    its phases when its load began (None until one has)."""
    for path in sorted(out.glob("phases-*.json")):
        with contextlib.suppress(OSError, ValueError, KeyError, StopIteration):
            phases = json.loads(path.read_text())["phases"]
            return float(next(p["end"] for p in phases if p["name"] == "baseline"))
    return None


def faults_start(
    ctx: RunContext, mode: str, options: LoadOptions, out: Path
) -> FaultRun | None:
    """The mode's faults, played in a thread from the sale's start; None if none."""
    planned = schedule_of(ctx, options)
    if not planned:
        return None
    late = [f.describe() for f in planned if f.at >= options.sale_seconds]
    if late:
        ctx.say(f"[{mode}] faults after the sale's end, never due: {'; '.join(late)}")
    store = faults.fault_store(
        ctx.endpoints.redis_url, prefix=ctx.env.get("FAULTS_KEY_PREFIX")
    )
    ctx.say(f"[{mode}] faults: " + "; ".join(f.describe() for f in planned))
    return FaultRun(
        store=store,
        schedule=planned,
        origin_of=lambda: sale_start(out),
        sale_seconds=options.sale_seconds,
        say=lambda line: ctx.say(f"[{mode}]{line}"),
    ).start()


def dead_letters_since(ctx: RunContext, since: float) -> list[dict[str, Any]]:
    """The queue's open dead letters made since `since` (epoch seconds)."""
    done = manage("fulfillment", "dlq", "list", "--json", env=ctx.env)
    if done.code != 0:
        return [{"error": done.stderr.strip()[-300:]}]
    return [
        letter
        for letter in json.loads(done.stdout or "[]")
        if datetime.fromisoformat(letter["created_at"]).timestamp() >= since
    ]


def faults_outcome(
    ctx: RunContext, run: FaultRun, result: dict[str, Any], since: float
) -> dict[str, Any]:
    orders, warehouse = result["orders"], result["warehouse_raw"]
    letters = dead_letters_since(ctx, since) if result["mode"] == "strangler" else []
    tourney = result["figures"]["sale"]["tourney"]
    reconcile = {key: orders.get(key, 0) for key in RECONCILE_KEYS}
    return {
        "injected": run.windows(),
        "restarts": run.restarts(),
        "warehouse": {
            "refused_at_capacity": warehouse.get("refused", 0),
            "refused_by_fault": warehouse.get("fault_refusals", {}),
        },
        "customers": {
            "muskie_refused_by_status": orders.get("rejected_by_status", {}),
            "muskie_unconfirmed": orders.get("unconfirmed", 0),
            "tourney_failures": tourney.get("failures", 0),
            "tourney_requests": tourney.get("requests", 0),
        },
        "dead_letters": {
            "open": len(letters),
            "order_refs": [x.get("order_ref") for x in letters][:50],
        },
        "reconcile": {**reconcile, "drained": result["drained"]},
    }


def faults_markdown(summary: dict[str, Any]) -> list[str]:
    """The report's faults section; nothing when no mode had faults."""
    with_faults = {
        mode: f["faults"] for mode, f in summary["modes"].items() if f.get("faults")
    }
    if not with_faults:
        return []
    lines = ["", "## Faults", ""]
    for mode, block in with_faults.items():
        lines.append(f"### {mode}")
        lines.append("")
        for fault in block["injected"]:
            lines.append(f"- {fault['describe']}: {fault['outcome']}")
        customers, wh = block["customers"], block["warehouse"]
        rec = block["reconcile"]
        restarts = ", ".join(f"{k} ×{v}" for k, v in block["restarts"].items())
        lines += [
            "",
            f"What the system did: warehouse refusals by fault "
            f"{json.dumps(wh['refused_by_fault'])}, at capacity "
            f"{wh['refused_at_capacity']}; restarts: {restarts or 'none'}; "
            f"open dead letters: {block['dead_letters']['open']}.",
            f"What customers saw: Muskie buys refused by status "
            f"{json.dumps(customers['muskie_refused_by_status'])}, unconfirmed orders "
            f"{customers['muskie_unconfirmed']}; Tourney failures "
            f"{customers['tourney_failures']} of {customers['tourney_requests']}.",
            f"Reconcile: accepted {rec['accepted']}, fulfilled {rec['fulfilled']}, "
            f"failed {rec['failed']}, lost {rec['lost']}, duplicated "
            f"{rec['duplicated']}, oversold {rec['oversold']}, "
            f"{'drained' if rec['drained'] else '**not drained**'}.",
            "",
        ]
    return lines
