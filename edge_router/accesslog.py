"""One JSON line per request on stdout, written in batches: a short hot path."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from typing import TextIO

FLUSH_SECONDS = 0.2
FLUSH_LINES = 512


class AccessLog:
    def __init__(self, enabled: bool, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stdout
        self._lines: list[str] = []
        self._flush_scheduled = False
        self._second = -1
        self._stamp = ""

    def record(
        self,
        *,
        started_wall: float,
        client: str,
        method: str,
        path: str,
        route: str,
        origin: str,
        status: int,
        sent: int,
        duration: float,
        trace_id: str,
    ) -> None:
        if not self.enabled:
            return
        second = int(started_wall)
        if second != self._second:
            self._second = second
            moment = datetime.fromtimestamp(second, UTC)
            self._stamp = moment.strftime("%Y-%m-%dT%H:%M:%S")
        millis = int((started_wall - second) * 1000)
        # Every field is safe to write as is (a normalised, percent-encoded path; a
        # method uvicorn validated; names from the table) except the path when the
        # edge refused it: json.dumps covers that one.
        self._lines.append(
            f'{{"time":"{self._stamp}.{millis:03d}+00:00","client":"{client}",'
            f'"method":"{method}","path":{_text(path)},"route":"{route}",'
            f'"origin":"{origin}","status":{status},"bytes":{sent},'
            f'"duration_ms":{duration * 1000:.3f},"trace_id":"{trace_id}"}}'
        )
        if len(self._lines) >= FLUSH_LINES:
            self.flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            try:
                asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)
            except RuntimeError:
                self.flush()

    def flush(self) -> None:
        self._flush_scheduled = False
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()


def _text(value: str) -> str:
    if '"' in value or "\\" in value or not value.isprintable():
        return json.dumps(value)
    return f'"{value}"'


def wall_clock() -> float:
    return time.time()
