"""The control room's actions are the terminal's commands: each button runs the one
its page shows next to it, as a subprocess of the edge (no Django in the edge)."""

from __future__ import annotations

import asyncio
import os
import shlex
from dataclasses import dataclass

from edge_router.control_room.settings import ControlSettings

COMMAND_SECONDS = 60.0


@dataclass(frozen=True)
class Done:
    code: int
    output: str

    @property
    def last_line(self) -> str:
        lines = [line for line in self.output.strip().splitlines() if line.strip()]
        return lines[-1] if lines else ""


def command_env() -> dict[str, str]:
    """The edge's environment, for the commands: each picks its own settings."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def shown(argv: list[str]) -> str:
    """The command as a presenter would type it (`python manage.py ...`)."""
    return shlex.join(["python", *argv])


async def command_run(settings: ControlSettings, argv: list[str]) -> Done:
    """`python ARGV` in the project's root; its exit code and what it said."""
    process = await asyncio.create_subprocess_exec(
        settings.python,
        *argv,
        cwd=settings.root,
        env=command_env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), COMMAND_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        return Done(124, f"{shown(argv)} took more than {COMMAND_SECONDS:g}s")
    return Done(process.returncode or 0, out.decode(errors="replace"))
