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
        entry = {
            "time": datetime.fromtimestamp(started_wall, UTC).isoformat(
                timespec="milliseconds"
            ),
            "client": client,
            "method": method,
            "path": path,
            "route": route,
            "origin": origin,
            "status": status,
            "bytes": sent,
            "duration_ms": round(duration * 1000, 3),
            "trace_id": trace_id,
        }
        self._lines.append(json.dumps(entry, separators=(",", ":")))
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


def wall_clock() -> float:
    return time.time()
