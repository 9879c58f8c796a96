"""`python -m loadtest run` / `make sale`: the flash sale, mode by mode, one report.

The steps, each in a module of its own: prepare the stack (loadtest/stack.py: use
the one that answers, or start `make demo`'s); for each mode (legacy, then
strangler) open the sale afresh, run the crowds, drain until every accepted order
is fulfilled or failed, and collect (loadtest/mode.py, crowds.py, collect.py); then
the report (loadtest/report.py): `reports/sale-<timestamp>/` with summary.json,
summary.md, charts, Locust's CSV and HTML per mode. Exit 1 when any order was lost,
duplicated or oversold.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import cpus
from common.harness.processes import Process
from loadtest import identity, repeats, report
from loadtest.collect import traces_collect
from loadtest.config import Endpoints, RunOptions
from loadtest.context import RunContext, Say, default_say, iso
from loadtest.mode import mode_run
from loadtest.operations import ROOT, Stack, StackError
from loadtest.stack import stack_ensure

EXIT_OK, EXIT_INVARIANT, EXIT_ERROR = 0, 1, 2
# Stopped by Ctrl-C or SIGTERM, as a shell counts it (128 + SIGINT).
EXIT_INTERRUPTED = 130


def _interrupt(signum: int, _frame: object) -> None:
    # SIGTERM as Ctrl-C: every `finally` on the way out runs (faults cleared, the
    # Locust processes and the stack this run started stopped).
    raise KeyboardInterrupt(signal.Signals(signum).name)


def context_build(
    options: RunOptions, endpoints: Endpoints, env: dict[str, str], say: Say
) -> RunContext:
    started = time.time()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    report_dir = Path(options.reports_dir) / f"sale-{stamp}"
    # The processes this run starts pick their own settings (manage.py set ours).
    env = {k: v for k, v in env.items() if k != "DJANGO_SETTINGS_MODULE"}
    return RunContext(
        options=options,
        endpoints=endpoints,
        env=env,
        say=say,
        stack=Stack(endpoints, env),
        report_dir=report_dir if report_dir.is_absolute() else ROOT / report_dir,
        run_id=format(int(started), "x")[-6:],
        started=started,
        sale_path_cpus=cpus.sale_path_cpus(env),
        source_addresses=identity.source_addresses_work(
            endpoints.edge.split("//", 1)[-1]
        ),
    )


def _run_facts(ctx: RunContext, started_stack: Process | None) -> dict[str, Any]:
    return {
        "started": iso(ctx.started),
        "finished": iso(time.time()),
        "seconds": round(time.time() - ctx.started, 1),
        "report_dir": str(ctx.report_dir),
        "units": ctx.options.units,
        "load": ctx.options.load,
        "fulfillment_concurrency": ctx.options.fulfillment_concurrency,
        "repeat": ctx.options.repeat,
        "source_addresses": ctx.source_addresses,
        "cpus": os.cpu_count(),
        "sale_path_cpus": ctx.sale_path_cpus or "off",
        "python": sys.version.split()[0],
        "endpoints": {
            "edge": ctx.endpoints.edge,
            "shop": ctx.endpoints.shop,
            "orders": ctx.endpoints.orders,
            "warehouse": ctx.endpoints.warehouse,
        },
        "stack_started_by_run": started_stack is not None,
        "edge_engine": ctx.options.edge_engine,
    }


def _summary(ctx: RunContext) -> dict[str, Any]:
    """Every mode, then the report; the stack stopped if this run started it."""
    started_stack = None
    try:
        started_stack = stack_ensure(ctx)
        rounds = []
        for round_ in range(1, ctx.options.repeat + 1):
            if ctx.options.repeat > 1:
                ctx.say(f"round {round_} of {ctx.options.repeat}")
            rounds.append(
                {mode: mode_run(ctx, mode, round_=round_) for mode in ctx.options.modes}
            )
        traces = traces_collect(ctx) if ctx.options.traces else None
        run = _run_facts(ctx, started_stack)
        summary = report.summary_build(rounds[0], run=run, traces=traces)
        if len(rounds) > 1:
            each = [report.summary_build(r, run=run, traces=None) for r in rounds]
            summary["repeats"] = {
                **repeats.repeats_block(each),
                # Round 1's are the summary's own.
                "invariants_broken": [
                    f"round {n}: {broken}"
                    for n, s in enumerate(each[1:], start=2)
                    for broken in report.invariants_broken(s)
                ],
            }
        report.write_all(ctx.report_dir, summary, rounds[0], say=ctx.say)
        return summary
    finally:
        ctx.stack.close()
        if started_stack is not None:
            ctx.say("stopping the stack this run started")
            started_stack.stop()


def run(
    options: RunOptions,
    endpoints: Endpoints | None = None,
    *,
    env: dict[str, str] | None = None,
    say: Say = default_say,
) -> int:
    """One sale run: 0 when every order is accounted for, 1 when not, 2 on error."""
    env = dict(os.environ if env is None else env)
    env["EDGE_ENGINE"] = options.edge_engine
    endpoints = endpoints or Endpoints.from_env(env)
    ctx = context_build(options, endpoints, env, say)
    # The run says what it does itself; a line per HTTP call would drown it.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    ctx.report_dir.mkdir(parents=True, exist_ok=True)
    say(f"sale run: report in {ctx.report_dir}")
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main else None
    try:
        summary = _summary(ctx)
    except StackError as error:
        say(f"sale run failed: {error}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        say("sale run interrupted: the faults it set are cleared")
        return EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    broken = report.invariants_broken(summary)
    if broken:
        say("INVARIANTS BROKEN: " + "; ".join(broken))
        return EXIT_INVARIANT
    say("every order accounted for: none lost, duplicated or oversold")
    return EXIT_OK
