"""Collecting what one mode left behind: the stores' records reconciled against the
buyers' attempts, the latency figures of each phase, and (once, at the end of the
run) the traces of the sale."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from loadtest.config import MUSKIE_SKU, TOURNEY_SKU
from loadtest.context import RunContext, iso
from loadtest.journal import Attempt, attempts_read, samples_read
from loadtest.operations import manage
from loadtest.phases import sale_window, window_of
from loadtest.reconcile import StoreOrder, orders_store, reconcile, shop_store
from loadtest.slowest import slowest_collect
from loadtest.stats import figures, is_browse, is_muskie_buy, is_tourney, percentile

# What a buyer who found the rod gone was told: a 409, or a page without Buy now.
SOLD_OUT = frozenset({"sold_out", "sold_out_page"})


def _muskie_store(
    ctx: RunContext, mode: str, since: float
) -> tuple[dict[str, Any], list[dict[str, Any]], list[StoreOrder], int]:
    """The Muskie orders where each mode keeps them, and the units it had to sell."""
    if mode == "strangler":
        sale, rows = ctx.stack.sale_orders()
        return sale, rows, orders_store(rows), int(sale["units_allocated"])
    rows = ctx.stack.shop_orders_since(MUSKIE_SKU, iso(since))
    return {}, rows, shop_store(rows, MUSKIE_SKU), ctx.options.units


def mode_reconcile(
    ctx: RunContext, mode: str, tag: str, out: Path, since: float
) -> dict[str, dict[str, Any]]:
    attempts = attempts_read(out / "attempts.json")
    fulfilments = ctx.stack.fulfilments_since(iso(since))
    tourney_rows = ctx.stack.shop_orders_since(TOURNEY_SKU, iso(since))
    sale, muskie_rows, muskie_store, allocation = _muskie_store(ctx, mode, since)
    inputs = {
        "mode": mode,
        "run_tag": tag,
        "allocation": allocation,
        "sale": sale,
        "muskie_store": muskie_rows,
        "tourney_store": tourney_rows,
        "fulfilments": fulfilments,
    }
    (out / "reconcile-inputs.json").write_text(json.dumps(inputs, indent=1))
    muskie = reconcile(
        kind="muskie",
        store=muskie_store,
        allocation=allocation,
        attempts=attempts,
        run_tag=tag,
        fulfilments=fulfilments,
    )
    tourney = reconcile(
        kind="tourney",
        store=shop_store(tourney_rows, TOURNEY_SKU),
        allocation=None,
        attempts=attempts,
        run_tag=tag,
        fulfilments=fulfilments,
    )
    ctx.say(
        f"[{mode}] reconciled: {muskie['accepted']} Muskie orders accepted, "
        f"{muskie['fulfilled']} fulfilled, {muskie['failed']} failed, "
        f"lost {muskie['lost']}, duplicated {muskie['duplicated']}, "
        f"oversold {muskie['oversold']}; Tourney lost {tourney['lost']}, "
        f"duplicated {tourney['duplicated']}"
    )
    return {"muskie": muskie, "tourney": tourney}


def mode_figures(out: Path, phases: dict[str, Any]) -> dict[str, Any]:
    """Latency figures of the baseline and the sale. The Tourney page's are the
    watcher's (timed from when each request was due); the Muskie buyers' accept and
    sold-out answers are timed from when each buyer was due (open loop) or from
    when it pressed Buy now (closed loop)."""
    samples = samples_read(out / "samples.csv")
    base = window_of(phases["phases"], "baseline")
    sale = sale_window(phases["phases"])
    attempts = [a for a in attempts_read(out / "attempts.json") if a.kind == "muskie"]
    accept = _answers(a for a in attempts if a.outcome == "accepted")
    return {
        "baseline": {
            "tourney": figures(samples, which=is_tourney, start=base[0], end=base[1])
        },
        "sale": {
            "tourney": figures(samples, which=is_tourney, start=sale[0], end=sale[1]),
            "browse": figures(samples, which=is_browse, start=sale[0], end=sale[1]),
            "muskie_buy": figures(
                samples, which=is_muskie_buy, start=sale[0], end=phases["ended"]
            ),
        },
        "muskie_accept": {**accept, "accepted": accept["answers"]},
        "muskie_sold_out": _answers(a for a in attempts if a.outcome in SOLD_OUT),
    }


def _answers(attempts: Iterable[Attempt]) -> dict[str, Any]:
    ms = [a.latency_ms if a.from_due_ms is None else a.from_due_ms for a in attempts]
    return {
        "answers": len(ms),
        "p50_ms": _r(percentile(ms, 50)),
        "p95_ms": _r(percentile(ms, 95)),
        "p99_ms": _r(percentile(ms, 99)),
    }


def traces_collect(ctx: RunContext) -> dict[str, Any]:
    """The trace segments of the Muskie path, and the slowest Tourney requests."""
    return {**_segments_collect(ctx), "slowest": slowest_collect(ctx)}


def traces_sale_args(target: Path, window: int, *, engine: str) -> list[str]:
    """`traces sale` over the run's window. The nginx engine starts no trace (each
    starts at the origin): a purchase's trace then has no edge span to miss."""
    args = ["traces", "sale", "--report", str(target), "--last", f"{window}s"]
    return [*args, "--no-edge"] if engine == "nginx" else args


def _segments_collect(ctx: RunContext) -> dict[str, Any]:
    """`manage.py traces sale` over the run's window: the trace segments found."""
    window = int(time.time() - ctx.started) + 30
    target = ctx.report_dir / "traces"
    args = traces_sale_args(target, window, engine=ctx.options.edge_engine)
    ctx.say(f"traces: `manage.py {' '.join(args)}`")
    try:
        done = manage(*args, env=ctx.env, timeout=300)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": "`traces sale` did not finish in 300 s"}
    segments = target / "trace-segments.json"
    found = json.loads(segments.read_text()) if segments.exists() else {}
    if done.code != 0 or not found:
        # A purchase without a complete trace fails the command, after it wrote
        # the segments: keep them, say the failure.
        error = (done.stderr or done.stdout).strip().splitlines()
        error_text = error[-1] if error else f"exit {done.code}"
        return {**found, "ok": False, "error": error_text}
    return {"ok": True, **found}


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
