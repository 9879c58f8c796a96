"""The processes' log lines of a trace, read from their log files, in time order.

`make demo` keeps each process's output in `.data/logs/<process>.log` (rotated into
`.log.1`, `.log.2`; common/harness/log_rotation.py), and every line logged inside a
trace names it: `trace_id=<32 hex>` in the stack's line format, `"trace_id":"<32
hex>"` in the edge's JSON access log (common/tracing/logs.py). A line's time is the
ISO-8601 time it starts with, or the access log's `"time"`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

_LEADING_TIME = re.compile(
    rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d))"
)
_JSON_TIME = re.compile(rb'"time":"([^"]+)"')
_EPOCH = datetime.fromtimestamp(0, UTC)
_FILE = re.compile(r"^(?P<process>.+)\.log(?:\.(?P<generation>\d+))?$")


@dataclass(frozen=True)
class LogLine:
    at: datetime | None
    process: str
    text: str

    @property
    def time_text(self) -> str:
        if self.at is None:
            return "?"
        return self.at.strftime("%H:%M:%S.%f")[:-3]


def _time(line: bytes) -> datetime | None:
    found = _LEADING_TIME.match(line) or _JSON_TIME.search(line)
    if found is None:
        return None
    try:
        return datetime.fromisoformat(found.group(1).decode().replace("Z", "+00:00"))
    except ValueError:
        return None


def _log_files(directory: Path) -> Iterator[tuple[str, Path]]:
    """(process, file) for every log file, the oldest generation of each first."""
    found: list[tuple[str, int, Path]] = []
    for path in directory.glob("*.log*"):
        match = _FILE.match(path.name)
        if match and path.is_file():
            generation = int(match["generation"] or 0)
            found.append((match["process"], -generation, path))
    for process, _, path in sorted(found):
        yield process, path


def log_lines_of(directory: Path, trace_ids: Iterable[str]) -> list[LogLine]:
    """Every line of every process's log naming one of `trace_ids`, by time (lines
    of one process keep their order; a line without a time goes last)."""
    needles = [tid.lower().encode() for tid in trace_ids]
    lines: list[LogLine] = []
    if not directory.is_dir():
        return lines
    for process, path in _log_files(directory):
        with path.open("rb") as handle:
            for raw in handle:
                if not any(needle in raw for needle in needles):
                    continue
                text = raw.rstrip(b"\r\n").decode("utf-8", "replace")
                lines.append(LogLine(_time(raw), process, text))
    return sorted(lines, key=lambda line: (line.at is None, line.at or _EPOCH))
