"""What the load generator saw: every request (a sample) and every purchase attempt.

Kept in the load process and written at the end as `samples.csv` and `attempts.json`;
the runner computes the phases' figures and the reconciliation from them.

A sample is (start, name, status, ms, ok, trace_id). For the open-loop crowds
(loadtest/openloop.py) `start` is when the request was *due* and `ms` counts from
then, so a slow server (or a busy generator) cannot hide its queue; for Locust's
closed-loop crowds, when it was sent. `trace_id` is the answer's `X-Trace-Id` ("" when
it had none), to find a slow request's trace.
"""

from __future__ import annotations

import csv
import json
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# trace_id: the answer's X-Trace-Id ("" when it had none): the report links the
# slowest Tourney requests to their traces (loadtest/slowest.py).
# Where following an order ends: packed, or failed in the open.
FINAL = frozenset({"fulfilled", "failed"})
SAMPLE_FIELDS = ("start", "name", "status", "ms", "ok", "trace_id")
Sample = tuple[float, str, int, float, bool, str]


@dataclass
class Attempt:
    """One press of Buy now (or a look at a page that no longer offered it)."""

    kind: str  # "muskie" or "tourney"
    buyer: int
    attempt: int
    email: str
    started: float
    # accepted | sold_out | rejected | sold_out_page | page_error
    outcome: str = ""
    status: int = 0
    latency_ms: float = 0.0
    reason: str = ""
    order_number: str | None = None
    order_id: str | None = None
    # What following the order showed: fulfilled | failed | timeout | error | ""
    final_status: str = ""
    # Open loop: when the buyer was due (every attempt of a buyer keeps its first
    # due time) and its answer's latency counted from then; None in the closed loop.
    due: float | None = None
    from_due_ms: float | None = None
    followed_by: str = ""
    follow_seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Journal:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.samples: list[Sample] = []
        self.attempts: list[Attempt] = []

    def sample(
        self,
        start: float,
        name: str,
        status: int,
        ms: float,
        ok: bool,
        trace_id: str = "",
    ) -> None:
        self.samples.append((start, name, status, ms, ok, trace_id))

    def attempt(self, attempt: Attempt) -> None:
        with self._lock:
            self.attempts.append(attempt)

    def accepted(self) -> int:
        return sum(1 for a in self.attempts if a.outcome == "accepted")

    def write(self, out_dir: Path, *, suffix: str = "") -> None:
        """`samples<suffix>.csv` and `attempts<suffix>.json`."""
        samples_write(out_dir / f"samples{suffix}.csv", self.samples)
        attempts_write(out_dir / f"attempts{suffix}.json", self.attempts)


def samples_write(path: Path, samples: list[Sample]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(SAMPLE_FIELDS)
        for start, name, status, ms, ok, trace_id in samples:
            writer.writerow(
                [f"{start:.6f}", name, status, f"{ms:.2f}", int(ok), trace_id]
            )


def attempts_write(path: Path, attempts: list[Attempt]) -> None:
    path.write_text(json.dumps([asdict(a) for a in attempts], indent=1))


def samples_read(path: Path) -> list[Sample]:
    with path.open(newline="") as handle:
        rows = csv.DictReader(handle)
        return [
            (
                float(r["start"]),
                r["name"],
                int(r["status"]),
                float(r["ms"]),
                r["ok"] == "1",
                r.get("trace_id") or "",
            )
            for r in rows
        ]


def attempts_read(path: Path) -> list[Attempt]:
    return [Attempt(**row) for row in json.loads(path.read_text())]
