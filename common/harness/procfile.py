"""The Procfile, read as honcho and `sh -c` would run it.

Each line is `name: command`; the command reads the environment through
`${VAR:-default}` (VAR, or the default when VAR is unset or empty),
`${VAR:+alternative}` (the alternative when VAR is set and not empty, else nothing)
and plain `$VAR` / `${VAR}`. Expanded here, the tests, benchmarks and the launcher
run the very command line that `make demo` runs, with only the variables changed.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROCFILE = ROOT / "Procfile"
_EXPANSION = re.compile(r"\$\{(\w+)(?::([-+])([^}]*))?\}|\$(\w+)")


class ProcfileError(LookupError):
    """A process the Procfile does not name."""


def procfile_commands(path: Path = PROCFILE) -> dict[str, str]:
    """Process name → its command, unexpanded, in the Procfile's order."""
    commands: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, command = line.partition(":")
        commands[name.strip()] = command.strip()
    return commands


def expand(command: str, env: Mapping[str, str]) -> str:
    """`command` with every `${VAR:-default}`, `${VAR:+alt}` and `$VAR` of it
    replaced from `env` (an alternative's own `$VAR`s too)."""

    def one(match: re.Match[str]) -> str:
        name, operator, word, bare = match.groups()
        value = env.get(name or bare, "")
        if operator == "-":
            return value or expand(word, env)
        if operator == "+":
            return expand(word, env) if value else ""
        return value

    return _EXPANSION.sub(one, command)


def procfile_argv(
    name: str, env: Mapping[str, str], path: Path = PROCFILE
) -> list[str]:
    """The words of process `name`'s command line, expanded from `env`.

    Expansions are split into words, as the shell splits an unquoted one (the CPU
    prefix `taskset -c 0,1`); values are ports, counts and names, never quoted text.
    """
    commands = procfile_commands(path)
    if name not in commands:
        raise ProcfileError(f"the Procfile names no process {name!r}: {list(commands)}")
    return shlex.split(expand(commands[name], env))
