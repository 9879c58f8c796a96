"""Start a process, wait until it answers, stop it; free ports.

A `Process` runs one command in a process group of its own, its output in a log
file. It is ready when its port takes a connection, its URL answers (any HTTP
status: a 503 is a server that is up), a line of text appears in its log, or a
check of the caller's passes; a process that exits or is not ready in time is an
error that quotes the tail of its log. `stop()` signals the whole group (a gunicorn
master and its workers, honcho and its processes), then kills it after a grace
period.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

from common.harness.log_rotation import LogPump, RotatingLog, Rotation
from common.harness.procfile import ROOT

TAIL_LINES = 40


class ProcessError(RuntimeError):
    """A process exited at start, or did not answer in time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """`count` different free ports (asked at once, so none is handed out twice)."""
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


def port_answers(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def url_answers(url: str, timeout: float = 1.0) -> bool:
    """True when `url` gives an HTTP answer, whatever its status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):  # noqa: S310 - our own
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def venv_environ(env: Mapping[str, str]) -> dict[str, str]:
    """Ours, then `env`, with this interpreter's bin first on PATH: the Procfile
    names bare commands (gunicorn, celery, python) that must be this venv's."""
    merged = {**os.environ, **env}
    bin_dir = str(Path(sys.executable).parent)
    merged["PATH"] = os.pathsep.join([bin_dir, merged.get("PATH", "")])
    merged.setdefault("PYTHONUNBUFFERED", "1")
    return merged


class Process:
    """One command as a process group; a context manager that starts and closes it."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        ready_url: str | None = None,
        ready_text: str | None = None,
        ready: Callable[[], bool] | None = None,
        log_path: Path | None = None,
        rotation: Rotation | None = None,
        stop_signal: int = signal.SIGTERM,
        grace: float = 10.0,
        poll_seconds: float = 0.1,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        # What the caller set; the process also gets our environment (environ()).
        self.env = dict(env or {})
        self.port = port
        self.ready_url = ready_url
        self.ready_text = ready_text
        self.ready = ready
        self.stop_signal = stop_signal
        self.grace = grace
        self.poll_seconds = poll_seconds
        self.process: subprocess.Popen[bytes] | None = None
        self._own_log = log_path is None
        if log_path is None:
            log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - removed in close()
                prefix=f"{name}-", suffix=".log", delete=False
            )
            log.close()
            log_path = Path(log.name)
        self.log_path = log_path
        # With a rotation, the output comes through a pipe (log_rotation.py).
        self.rotation = rotation
        self._rotating: RotatingLog | None = None
        self._pump: LogPump | None = None

    # --- what it is --------------------------------------------------------------

    @property
    def bound_port(self) -> int:
        """The port it listens on; only a process given one has it."""
        if self.port is None:
            raise ValueError(f"{self.name} was given no port")
        return self.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def environ(self) -> dict[str, str]:
        return venv_environ(self.env)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = TAIL_LINES) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    # --- start, stop ---------------------------------------------------------------

    def start(self, *, timeout: float = 60) -> Process:
        """Start it and return once it is ready (ProcessError if it is not)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        if self.rotation is not None:
            self._start_piped(self.rotation)
        else:
            with self.log_path.open("ab") as out:
                self._popen(out)
        self.wait_ready(timeout=timeout, offset=offset)
        return self

    def _popen(self, out: int | IO[bytes]) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - the caller's command
            self.argv,
            cwd=ROOT,
            env=self.environ(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _start_piped(self, rotation: Rotation) -> None:
        self._drain()  # a killed predecessor's last lines first
        if self._rotating is None:
            self._rotating = RotatingLog(
                self.log_path, max_bytes=rotation.max_bytes, backups=rotation.backups
            )
        self._popen(subprocess.PIPE)
        assert self.process is not None
        assert self.process.stdout is not None
        self._pump = LogPump(
            self.process.stdout, self._rotating, echo=rotation.echo
        ).start()

    def _drain(self) -> None:
        # The process is gone: its last lines reach the file before we say so.
        if self._pump is not None:
            self._pump.join(timeout=5)

    def wait_ready(self, *, timeout: float, offset: int = 0) -> None:
        deadline = time.monotonic() + timeout
        while not self._ready(offset):
            assert self.process is not None
            if self.process.poll() is not None:
                raise ProcessError(
                    f"{self.name} exited at start ({self.process.returncode}); "
                    f"its output ends:\n{self.tail()}"
                )
            if time.monotonic() > deadline:
                raise ProcessError(
                    f"{self.name} did not answer in {timeout:.0f}s; "
                    f"its output ends:\n{self.tail()}"
                )
            time.sleep(self.poll_seconds)

    def _ready(self, offset: int) -> bool:
        if self.ready_text is not None and not self._log_has(self.ready_text, offset):
            return False
        if self.ready_url is not None and not url_answers(self.ready_url):
            return False
        if self.ready is not None and not self.ready():
            return False
        if self.ready_url is None and self.port is not None:
            return port_answers(self.port)
        return True

    def _log_has(self, text: str, offset: int) -> bool:
        try:
            with self.log_path.open("rb") as log:
                # A log rotated since the start is read from its beginning.
                size = log.seek(0, os.SEEK_END)
                log.seek(offset if offset <= size else 0)
                return text.encode() in log.read()
        except FileNotFoundError:  # not written yet, or being rotated
            return False

    def stop(self, grace: float | None = None) -> int | None:
        """Its stop signal to the whole group; SIGKILL after the grace period."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            _signal_group(self.process.pid, self.stop_signal)
            try:
                self.process.wait(self.grace if grace is None else grace)
            except subprocess.TimeoutExpired:
                _signal_group(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._drain()
        if self._rotating is not None:
            self._rotating.close()
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL: no goodbye, no cleanup, as when a machine dies."""
        if self.running():
            assert self.process is not None
            _signal_group(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self._drain()

    def close(self) -> None:
        """Stop it, and remove its log unless the caller named the file."""
        self.stop()
        if self._own_log:
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> Process:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def run_foreground(argv: Sequence[str], env: Mapping[str, str]) -> int:
    """Run a child (honcho, pytest) until it ends; Ctrl-C or SIGTERM reach it once.

    The child gets a session of its own so a terminal's Ctrl-C is not delivered
    twice (once by the terminal, once by us); we forward it and wait.
    """
    proc = subprocess.Popen(  # noqa: S603 - the caller's command
        list(argv), cwd=ROOT, env=dict(env), start_new_session=True
    )

    def forward(signum: int, _frame: object) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)

    previous = {
        sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        return proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
