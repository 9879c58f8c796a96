"""One mode of a sale run: open the sale afresh (stock, sale, warehouse window, the
edge's mode), run the crowds, drain until nothing waits, then collect: reconcile,
figures, the warehouse's and the queue's peaks."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from loadtest import sale_figures
from loadtest.collect import mode_figures, mode_reconcile
from loadtest.config import LoadOptions
from loadtest.context import RunContext
from loadtest.crowds import crowds_run
from loadtest.faults_report import faults_outcome, faults_start
from loadtest.journal import attempts_read, samples_read
from loadtest.operations import ROOT
from loadtest.sampler import SAMPLE_FAULTS, Sampler
from loadtest.stack_cpu import stack_cpu_figures, stack_cpu_read


def sale_open(ctx: RunContext, mode: str, tag: str) -> None:
    """The mode's starting line: its units for sale, a fresh warehouse, its mode."""
    ctx.say(f"[{mode}] reset: {ctx.options.units} Muskie rods, fresh warehouse")
    for note in ctx.stack.reset(mode=mode, units=ctx.options.units, run_tag=tag):
        ctx.say(f"[{mode}]   {note}")
    ctx.stack.edge_mode(mode)
    ctx.say(f"[{mode}] the edge is in {mode} mode")


def _load_options(ctx: RunContext, mode: str, tag: str, out: Path) -> LoadOptions:
    options = LoadOptions(
        host=ctx.endpoints.edge,
        mode=mode,
        run_tag=tag,
        out_dir=str(out),
        **ctx.options.load,
    )
    if not ctx.source_addresses and options.source_addresses:
        ctx.say(f"[{mode}] cannot bind 127.x source addresses: one address for all")
        options = replace(options, source_addresses=False)
    return options


# Nothing may wait for this long in a row before the mode counts as drained: the
# legacy shop packs its backlog one order at a time, with a gap of a few ms between
# two that a single look could fall into.
QUIET_SECONDS = 1.0


def drain(ctx: RunContext, mode: str, sampler: Sampler) -> tuple[float, bool]:
    """Until nothing waits: no order queued or in the warehouse or in flight."""
    started = time.monotonic()
    last_said = 0.0
    quiet_since: float | None = None
    while True:
        try:
            sample = sampler.take()
        except SAMPLE_FAULTS:
            # A stack too busy to answer its counters is not a drained one.
            sampler.errors += 1
            quiet_since = None
            time.sleep(0.25)
            continue
        waiting = sample.waiting if mode == "strangler" else 0
        if waiting or sample.queue_depth or sample.in_flight:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        if quiet_since is not None and time.monotonic() - quiet_since >= QUIET_SECONDS:
            seconds = round(quiet_since - started, 2)
            ctx.say(f"[{mode}] drained in {seconds:.1f}s")
            return seconds, True
        if time.monotonic() - started > ctx.options.drain_timeout:
            ctx.say(f"[{mode}] drain timed out: {waiting} orders still waiting")
            return round(time.monotonic() - started, 2), False
        if time.monotonic() - last_said >= 2.0:
            ctx.say(
                f"[{mode}] drain: {waiting} orders waiting, queue "
                f"{sample.queue_depth}, warehouse in-flight {sample.in_flight}"
            )
            last_said = time.monotonic()
        time.sleep(0.25)


def _drain_seconds(mode: str, sampler: Sampler, phases: dict[str, Any]) -> float:
    """From the end of the load (the fade's last buyer gone) until nothing waited:
    buyers still following their orders are part of the drain, not the load."""
    busy = [
        s.at
        for s in sampler.samples
        if s.at >= phases["load_end"]
        and (s.in_flight or s.queue_depth or (mode == "strangler" and s.waiting))
    ]
    return round(max(busy) - phases["load_end"], 2) if busy else 0.0


def _warehouse_figures(warehouse: dict[str, Any]) -> dict[str, Any]:
    return {
        "capacity": warehouse["capacity"],
        "peak_in_flight": warehouse["peak_in_flight"],
        "refused": warehouse["refused"],
        "fulfilled": warehouse["fulfilled"],
        # MU: the orders service's (through the queue), LF: the legacy shop's.
        "peak_in_flight_by_source": warehouse.get("peak_in_flight_by_source", {}),
    }


def _sale_figures(
    ctx: RunContext,
    out: Path,
    phases: dict[str, Any],
    orders: dict[str, Any],
    warehouse: dict[str, Any],
) -> dict[str, Any]:
    """Allocation, the Tourney ratio's interval, drain rate, the generator's CPU."""
    inputs = json.loads((out / "reconcile-inputs.json").read_text())
    return {
        "allocation": sale_figures.allocation_figures(
            attempts=attempts_read(out / "attempts.json"),
            phases=phases,
            orders=orders,
            options=ctx.options.load,
        ),
        "tourney_ratio": sale_figures.tourney_ratio(
            samples_read(out / "samples.csv"), phases
        ),
        "drain": sale_figures.drain_figures(
            fulfilments=inputs["fulfilments"],
            concurrency=ctx.options.fulfillment_concurrency,
            handling_ms=warehouse.get("handling_ms"),
            watch=json.loads((out / "watch.json").read_text()),
        ),
        "generator": sale_figures.generator_figures(phases),
    }


def _edge_seen(ctx: RunContext) -> dict[str, str]:
    """What served the mode's load on the public port (its engine, as the edge's
    health check says, and `Server`), asked as the load ends."""
    try:
        return ctx.stack.edge_seen()
    except SAMPLE_FAULTS as error:
        return {"engine": "unknown", "mode": "", "server": "", "error": str(error)}


def mode_run(ctx: RunContext, mode: str, *, round_: int = 1) -> dict[str, Any]:
    """One mode, start to reconciliation; round 1 in `<mode>/`, round k in
    `<mode>-r<k>/` (sale run --repeat)."""
    suffix = "" if round_ == 1 else f"-r{round_}"
    tag = f"{ctx.run_id}{mode[0]}{round_ if round_ > 1 else ''}"
    out = ctx.report_dir / f"{mode}{suffix}"
    out.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    sale_open(ctx, mode, tag)
    since = time.time() - 1.0
    options = _load_options(ctx, mode, tag, out)
    sampler = Sampler(ctx.stack, board=mode == "strangler")
    sampler.start()
    fault_run = faults_start(ctx, mode, options, out)
    cpu_before, load_started = stack_cpu_read(ROOT), time.monotonic()
    try:
        load_peak = crowds_run(ctx, mode, options, out, sampler)
        edge = _edge_seen(ctx)
        if fault_run is not None:
            # The drain shows the healing: no fault outlives the load.
            fault_run.close()
        _, drained = drain(ctx, mode, sampler)
    finally:
        if fault_run is not None:
            fault_run.close()
        sampler.stop()
    cpu_after, load_seconds = stack_cpu_read(ROOT), time.monotonic() - load_started
    warehouse = ctx.stack.warehouse_stats()
    result = mode_reconcile(ctx, mode, tag, out, since)
    phases = json.loads((out / "phases.json").read_text())
    (out / "watch.json").write_text(json.dumps(sampler.as_rows()))
    figures = mode_figures(out, phases)
    outcome = {
        "mode": mode,
        "orders": result["muskie"],
        "warehouse_raw": warehouse,
        "figures": figures,
        "drained": drained,
    }
    return {
        "mode": mode,
        "edge": edge,
        "faults": fault_run and faults_outcome(ctx, fault_run, outcome, since),
        "phases": phases,
        "run_tag": tag,
        "figures": figures,
        **_sale_figures(ctx, out, phases, result["muskie"], warehouse),
        "orders": result["muskie"],
        "tourney_orders": result["tourney"],
        "warehouse": _warehouse_figures(warehouse),
        "queue": {
            "peak_depth": max((s.queue_depth for s in sampler.samples), default=0),
            "peak_waiting": max((s.waiting for s in sampler.samples), default=0),
        },
        "drain_seconds": _drain_seconds(mode, sampler, phases),
        "drained": drained,
        "load_average": {
            "before": [round(x, 2) for x in load_before],
            "peak_1m": round(max(load_peak, os.getloadavg()[0]), 2),
            "after": [round(x, 2) for x in os.getloadavg()],
        },
        "sampler_errors": sampler.errors,
        "stack_cpu": stack_cpu_figures(
            cpu_before,
            cpu_after,
            seconds=load_seconds,
            accepted=int(result["muskie"]["accepted"]),
        ),
    }
