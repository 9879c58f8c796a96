"""What every step of one sale run reads: its options, the stack's addresses and the
client that operates it, where the report goes, how the run speaks."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from loadtest.config import Endpoints, RunOptions
from loadtest.operations import Stack

Say = Callable[[str], None]


def default_say(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


@dataclass
class RunContext:
    options: RunOptions
    endpoints: Endpoints
    # The processes this run starts pick their own settings (no DJANGO_SETTINGS_MODULE).
    env: dict[str, str]
    say: Say
    stack: Stack
    report_dir: Path
    run_id: str
    started: float
    # As the launcher resolves it for the stack (checked before the run starts).
    sale_path_cpus: str
    # Whether buyers can each have a 127.x source address of their own.
    source_addresses: bool

    def stack_reconnect(self, endpoints: Endpoints) -> None:
        """Operate the stack at `endpoints` from now on (a new client)."""
        self.stack.close()
        self.endpoints = endpoints
        self.stack = Stack(endpoints, self.env)
