"""The control room's actions: the edge's mode, the faults, the sale. Each is the
command the page shows next to its button, and each is logged (who, what, how it
ended). An action answers (status, JSON document)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import redis

from edge_router.control_room import faults
from edge_router.control_room.commands import command_run, shown
from edge_router.control_room.sale import SaleRefused, sale_argv
from edge_router.modes import ModeError, mode_validate, mode_write_async

if TYPE_CHECKING:
    from edge_router.control_room.room import ControlRoom

Answer = tuple[int, dict[str, Any]]


def mode_command(doc: dict[str, Any]) -> str:
    percent = doc.get("percent")
    extra = ["--percent", str(percent)] if percent is not None else []
    return shown(["manage.py", "edge", "mode", str(doc.get("mode")), *extra])


async def mode_set(
    room: ControlRoom, doc: dict[str, Any], *, who: str, client: str
) -> Answer:
    """`manage.py edge mode MODE [--percent N]`: the same Redis write."""
    unknown = sorted(set(doc) - {"mode", "percent"})
    if unknown:
        return 422, {"error": f"unknown fields: {unknown}"}
    command = mode_command(doc)
    try:
        mode = mode_validate(doc.get("mode"), doc.get("percent"))
    except ModeError as error:
        return 422, {"error": str(error), "command": command}
    edge = room.edge
    try:
        stored = await mode_write_async(edge.redis, edge.config.mode_key, mode)
    except (redis.RedisError, OSError) as error:
        outcome = f"the mode store (Redis) is unreachable: {type(error).__name__}"
        room.log_action(
            who=who, client=client, action="mode", command=command, outcome=outcome
        )
        return 503, {"error": outcome, "command": command}
    await edge.follower.refresh()
    room.log_action(
        who=who, client=client, action="mode", command=command,
        outcome=f"{stored.describe()} (version {stored.version})",
    )  # fmt: skip
    return 200, {"mode": stored.as_dict(), "command": command}


async def fault_command(
    room: ControlRoom, argv: list[str], *, who: str, client: str
) -> Answer:
    """`manage.py faults set|clear|kill ...`, its output or its refusal."""
    command = shown(argv)
    done = await command_run(room.settings, argv)
    outcome = done.last_line or f"exit {done.code}"
    room.log_action(
        who=who, client=client, action="faults", command=command, outcome=outcome
    )
    if done.code == 0:
        return 200, {"output": done.output.strip(), "command": command}
    if "Unknown command" in done.output:
        # The faults (common/faults.py, `manage.py faults`) are not in this checkout.
        doc = {"error": "this checkout has no `manage.py faults`", "command": command}
        return 501, doc
    if "Redis does not answer" in done.output:
        return 503, {"error": outcome, "command": command}
    return 422, {"error": outcome, "command": command}


async def faults_act(
    room: ControlRoom, what: str, doc: dict[str, Any], *, who: str, client: str
) -> Answer:
    build = {"set": faults.set_argv, "clear": faults.clear_argv}
    try:
        argv = build.get(what, faults.kill_argv)(doc)
    except faults.FaultRefused as error:
        return 422, {"error": str(error)}
    return await fault_command(room, argv, who=who, client=client)


async def sale_start(
    room: ControlRoom, doc: dict[str, Any], *, who: str, client: str
) -> Answer:
    """`python -m loadtest run --no-start ...`, one at a time."""
    try:
        argv = sale_argv(doc)
    except SaleRefused as error:
        return 422, {"error": str(error)}
    command = shown(argv)
    try:
        state = await room.sale.start(argv, who=who)
    except SaleRefused as error:
        return 409, {"error": str(error), "command": command}
    except (redis.RedisError, OSError) as error:
        return 503, {"error": f"could not start: {type(error).__name__}"}
    room.log_action(
        who=who, client=client, action="sale start", command=command,
        outcome=f"running, pid {state['pid']}",
    )  # fmt: skip
    return 202, {"sale": state, "command": command}


async def sale_stop(room: ControlRoom, *, who: str, client: str) -> Answer:
    """Ctrl-C to the running sale (SIGINT to its process group)."""
    state = await room.sale.stop()
    if state is None:
        return 409, {"error": "no sale is running"}
    command = f"kill -INT -{state['pid']}  (Ctrl-C in its terminal)"
    room.log_action(
        who=who, client=client, action="sale stop", command=command,
        outcome="interrupted",
    )  # fmt: skip
    return 202, {"sale": state, "command": command}
