"""One JSON line per request on stdout, written in batches: a short hot path.

Each line names the request's trace (`trace_id`) and the edge's server span in it
(`span_id`), as every other log line of the stack does (common/tracing/logs.py);
`manage.py traces show` reads them beside the others.

The batches are written by a thread of their own, never by the event loop: stdout is
a pipe (honcho, a container runtime) that fills when its reader falls behind, and a
write to a full pipe blocks. On the event loop that stalled every request of the
worker, up to half a second in a sale on two busy cores (the Tourney page's p99
through the edge went from 175 to 77 ms with the log off). A slow reader now only
delays the log.
"""

from __future__ import annotations

import asyncio
import json
import queue
import sys
import threading
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
        # Batches for the writer thread; None asks it to stop.
        self._batches: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()

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
        span_id: str = "",
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
            f'"duration_ms":{duration * 1000:.3f},"trace_id":"{trace_id}",'
            f'"span_id":"{span_id}"}}'
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
        """Hand the lines so far to the writer thread (never blocks)."""
        self._flush_scheduled = False
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        self._writer_start()
        self._batches.put("\n".join(lines) + "\n")

    def close(self, timeout: float = 5.0) -> None:
        """Flush, then wait (up to `timeout`) until the writer has written it all."""
        self.flush()
        writer = self._writer
        if writer is None:
            return
        self._batches.put(None)
        writer.join(timeout)
        self._writer = None

    def _writer_start(self) -> None:
        with self._writer_lock:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(
                    target=self._write_batches, name="edge-access-log", daemon=True
                )
                self._writer.start()

    def _write_batches(self) -> None:
        while (batch := self._batches.get()) is not None:
            try:
                self.stream.write(batch)
                self.stream.flush()
            except (OSError, ValueError):
                pass  # stdout closed or gone: the log is lost, the edge goes on


def _text(value: str) -> str:
    if '"' in value or "\\" in value or not value.isprintable():
        return json.dumps(value)
    return f'"{value}"'


def wall_clock() -> float:
    return time.time()
