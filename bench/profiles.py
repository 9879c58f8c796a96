"""py-spy flame graphs of running processes, for a benchmark's phase.

    with profiles_recorded({"relay": pid, ...}, "reports/profiles"):
        ...  # the load

Each process (and its children: gunicorn's workers) is sampled by `py-spy record`
until the block ends; one SVG per process in the directory. No directory: nothing.
py-spy needs ptrace rights over the processes (root, or the same user with
kernel.yama.ptrace_scope 0).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def profiles_recorded(pids: dict[str, int], directory: str | None) -> Iterator[None]:
    if not directory:
        yield
        return
    beside = Path(sys.executable).parent / "py-spy"  # the venv's, not on PATH
    spy = str(beside) if beside.exists() else shutil.which("py-spy")
    if spy is None:
        raise RuntimeError("py-spy is not installed (requirements/dev.in)")
    Path(directory).mkdir(parents=True, exist_ok=True)
    recorders = [
        subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(pid),
                "--subprocesses",
                "--rate",
                "50",
                "--nonblocking",
                "--output",
                str(Path(directory) / f"{name}.svg"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in pids.items()
    ]
    try:
        yield
    finally:
        for recorder in recorders:
            recorder.send_signal(signal.SIGINT)
        for recorder in recorders:
            recorder.wait(timeout=60)
