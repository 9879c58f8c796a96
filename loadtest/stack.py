"""Stack preparation for a sale run: use the stack that answers, or start one.

When nothing answers, `python -m common.devstack demo` runs as a harness process
(common/harness/processes.py: a process group of its own, its output in the report
folder); the run waits until every service answers and the demo's sale is open, and
at the end sends SIGINT to that group only, as Ctrl-C in `make demo` would. The
stack it starts traces every Tourney page request (TRACES_TOURNEY_PAGE_RATIO=1), so
the report's slowest ones all have a trace; a stack already running keeps its own.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from common.harness.processes import Process, ProcessError
from common.harness.services import demo_process
from loadtest.context import RunContext, Say
from loadtest.operations import Stack, StackError

# The edge's ratio for the watched Tourney page (edge_router/routes.toml).
TOURNEY_PAGE_RATIO_ENV = "TRACES_TOURNEY_PAGE_RATIO"


def stack_ensure(ctx: RunContext) -> Process | None:
    """None when the whole stack answers; the stack this run started otherwise."""
    answers = ctx.stack.answers()
    if all(answers.values()):
        _engine_check(ctx)
        ctx.say(
            "using the stack that answers: its edge traces the Tourney page at the "
            f"ratio it started with ({TOURNEY_PAGE_RATIO_ENV}=1 traces every one)"
        )
        return None
    if any(answers.values()) or not ctx.options.start_stack:
        down = ", ".join(name for name, up in answers.items() if not up)
        raise StackError(
            f"part of the stack does not answer ({down}); start it all "
            "(`make demo`) or stop it all and let the run start it"
        )
    ctx.say("no stack answers: starting `python -m common.devstack demo`")
    _backing_resolve(ctx)
    # Every watched Tourney request traced, so the slowest all have a trace
    # (loadtest/slowest.py); the rest at the table's ratio. The caller's value wins.
    env = {TOURNEY_PAGE_RATIO_ENV: "1", **ctx.env}
    started = stack_start(
        ctx.stack, env=env, log_path=ctx.report_dir / "stack.log", say=ctx.say
    )
    ctx.say("the stack is up")
    _engine_check(ctx)
    return started


def _engine_check(ctx: RunContext) -> None:
    """The running edge is on the engine asked for (its health answer says)."""
    running = ctx.stack.edge_engine()
    if running != ctx.options.edge_engine:
        raise StackError(
            f"the running edge is on the {running} engine, not "
            f"{ctx.options.edge_engine}: stop the stack, or run with "
            f"--edge-engine {running}"
        )
    ctx.say(f"the edge runs on the {running} engine")


def _backing_resolve(ctx: RunContext) -> None:
    """PostgreSQL and Redis as the launcher would pick them, resolved here, so this
    run's `manage.py` calls reach the same ones. Embedded servers started here
    (DEVSTACK_EMBEDDED=1, or nothing on 5432/6379) live as long as the run.
    """
    from common import devstack

    backing = devstack.resolve_backing()
    for note in backing.notes:
        ctx.say(note)
    ctx.env["DATABASE_URL"] = backing.database_url
    ctx.env["REDIS_URL"] = backing.redis_url
    ctx.stack_reconnect(replace(ctx.endpoints, redis_url=backing.redis_url))


def stack_start(
    stack: Stack,
    *,
    env: dict[str, str],
    log_path: Path,
    say: Say,
    timeout: float = 240,
) -> Process:
    """`make demo`'s launcher, returned once every service answers and the sale is
    open (StackError, the stack stopped again, if it does not)."""
    progress = {"said": 0.0}

    def ready() -> bool:
        answers = stack.answers()
        if all(answers.values()) and stack.sale_board() is not None:
            return True
        if time.monotonic() - progress["said"] > 5:
            down = ", ".join(name for name, up in answers.items() if not up)
            say(f"waiting for the stack ({down or 'the demo sale'} not ready yet)")
            progress["said"] = time.monotonic()
        return False

    demo = demo_process(
        env=env, ready=ready, log_path=log_path, grace=60, poll_seconds=1.0
    )
    try:
        return demo.start(timeout=timeout)
    except ProcessError as error:
        demo.stop()
        raise StackError(f"{error}\n(the whole log: {log_path})") from None
