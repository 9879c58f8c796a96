"""Start the demo stack for a sale run when none answers, and stop it afterwards.

`python -m common.devstack demo` in a session of its own (so one signal reaches
honcho and every process under it), its output in the report folder; the run waits
until every service answers and the demo's sale is open, and at the end sends
SIGINT to that session only, as Ctrl-C in `make demo` would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from loadtest.operations import ROOT, Stack, StackError


@dataclass
class StartedStack:
    process: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]

    def stop(self, timeout: float = 60) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


def stack_start(
    stack: Stack,
    *,
    env: dict[str, str],
    log_path: Path,
    say: Callable[[str], None],
    timeout: float = 240,
) -> StartedStack:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "common.devstack", "demo"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    started = StartedStack(process, log_path, log)
    deadline = time.monotonic() + timeout
    last_said = 0.0
    while True:
        if process.poll() is not None:
            started.stop()
            raise StackError(f"the stack exited at start; see {log_path}")
        answers = stack.answers()
        board = stack.sale_board() if answers["orders"] else None
        if all(answers.values()) and board is not None:
            return started
        if time.monotonic() > deadline:
            started.stop()
            raise StackError(f"the stack did not come up in {timeout:.0f}s: {answers}")
        if time.monotonic() - last_said > 5:
            down = ", ".join(name for name, up in answers.items() if not up)
            say(f"waiting for the stack ({down or 'the demo sale'} not ready yet)")
            last_said = time.monotonic()
        time.sleep(1.0)
