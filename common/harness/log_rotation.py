"""A process's output into its log file, rotated by size, never cutting a line.

`make demo`'s supervisor (common/devstack.py) gives each process a pipe instead of
the file: a `LogPump` thread reads it and writes whole lines to a `RotatingLog`,
`<name>.log`, which becomes `<name>.log.1` when the next line would take it past
`max_bytes` (the older ones move up to `.log.<backups>`; the oldest is dropped). A
rotation happens only between two lines, so no line is split across files or lost,
and every line can also go to the console (`echo`) as it is written. A line longer
than `max_bytes` is written whole, into a file of its own.

    LOG_FILE_MAX_BYTES   default 20 MiB (at least 64 KiB)
    LOG_FILE_BACKUPS     default 2: <name>.log, .log.1, .log.2, about 60 MiB a process
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_BACKUPS = 2
MIN_MAX_BYTES = 64 * 1024
# A line with no end in sight is written once it is this long (a progress bar).
LONGEST_PENDING = 1024 * 1024
Echo = Callable[[str], None]


@dataclass(frozen=True)
class Rotation:
    """How a process's log is kept: its size cap, the old files kept, and where
    each line is shown as well (the demo's console), if anywhere."""

    max_bytes: int = DEFAULT_MAX_BYTES
    backups: int = DEFAULT_BACKUPS
    echo: Echo | None = None


def rotation_from_env(env: Mapping[str, str], *, echo: Echo | None = None) -> Rotation:
    """LOG_FILE_MAX_BYTES and LOG_FILE_BACKUPS, each its default when unset or bad."""

    def number(name: str, default: int, low: int) -> int:
        try:
            return max(int(env.get(name, "") or default), low)
        except ValueError:
            return default

    return Rotation(
        max_bytes=number("LOG_FILE_MAX_BYTES", DEFAULT_MAX_BYTES, MIN_MAX_BYTES),
        backups=number("LOG_FILE_BACKUPS", DEFAULT_BACKUPS, 1),
        echo=echo,
    )


class RotatingLog:
    """One log file and its old generations; whole lines in, thread-safe (a killed
    process's last lines may still be draining while its successor writes)."""

    def __init__(self, path: Path, *, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None
        self._size = 0

    def generation(self, number: int) -> Path:
        """`<name>.log.<number>`: the older, the higher."""
        return self.path.with_name(f"{self.path.name}.{number}")

    def _open(self) -> IO[bytes]:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("ab")
            self._size = self._file.tell()
        return self._file

    def write_line(self, line: bytes) -> None:
        with self._lock:
            log = self._open()
            if self._size and self._size + len(line) > self.max_bytes:
                log = self._rotate()
            log.write(line)
            log.flush()
            self._size += len(line)

    def _rotate(self) -> IO[bytes]:
        if self._file is not None:
            self._file.close()
            self._file = None
        for generation in range(self.backups - 1, 0, -1):
            older = self.generation(generation)
            if older.exists():
                os.replace(older, self.generation(generation + 1))
        os.replace(self.path, self.generation(1))
        return self._open()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


class LogPump:
    """Copies a child's output (a pipe) into its log, line by line, until the last
    writer closes it (the process and every child it made)."""

    def __init__(self, stream: IO[bytes], log: RotatingLog, *, echo: Echo | None):
        self.stream = stream
        self.log = log
        self.echo = echo
        self._thread = threading.Thread(target=self._run, name="log-pump", daemon=True)

    def start(self) -> LogPump:
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        pending = b""
        try:
            while chunk := os.read(self.stream.fileno(), 65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self._write(line + b"\n")
                if len(pending) >= LONGEST_PENDING:
                    self._write(pending)
                    pending = b""
        except OSError:
            pass
        finally:
            if pending:
                # The process ended mid-line: its last words are kept all the same.
                self._write(pending + b"\n")
            self.stream.close()

    def _write(self, line: bytes) -> None:
        self.log.write_line(line)
        if self.echo is not None:
            self.echo(line.rstrip(b"\n").decode(errors="replace"))
