"""The slowest watched requests of a sale: where each one's time went, and a trace
view of each (`traces slowest`, which the sale's load test calls).

A request's time is read off its trace's critical path (observability/model.py) and
put in the segments a page view meets: the edge's own work, the shop's (or the orders
service's) own, PostgreSQL, Redis, the warehouse, and waiting. Waiting is the time
the edge's call to the origin was open while the origin was not yet (or no longer)
working on it: the connection, gunicorn's queue for a free thread, the network; and
any wait after a span ended. What the load generator measured beyond the trace (its
clock starts when the request was due: its own queue, the network, the edge's
accept) is "outside the trace". The segments of a
request add up to the latency the load generator recorded, or to the trace's when
that is longer: the edge's server span closes after its last write (the access log,
the counters), so it can outlast the client's wait by a fraction of a millisecond,
and then nothing is outside the trace.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from observability.model import Piece, Trace
from observability.report import Compared, report_write
from observability.store import SpanStore, TraceNotFound

# Segments in the order a request meets them; the keys of the JSON and the table.
REQUEST_SEGMENTS: tuple[tuple[str, str], ...] = (
    ("outside", "outside the trace"),
    ("edge", "edge"),
    ("waiting", "waiting"),
    ("shop", "shop"),
    ("postgresql", "PostgreSQL"),
    ("redis", "Redis"),
    ("warehouse", "warehouse"),
    ("other", "other"),
)
_FROM_TRACE_SEGMENT = {
    "edge": "edge",
    "view": "shop",
    "db": "postgresql",
    "redis": "redis",
    "warehouse": "warehouse",
}
INTRO = (
    "One of the sale's slowest watched requests: its waterfall, where its time went "
    "(critical path) and the services it went through."
)


def _segment(piece: Piece) -> str:
    if piece.waiting:
        return "waiting"
    span = piece.span
    # The edge's call to an origin, on the critical path: the origin was not
    # working on the request (its span did not cover this stretch).
    if span.service == "edge" and span.kind == "client":
        return "waiting"
    return _FROM_TRACE_SEGMENT.get(piece.segment, "other")


def request_segments(trace: Trace, measured_ms: float | None) -> dict[str, float]:
    """Milliseconds per segment of the trace's request; with the latency the client
    measured, what it saw beyond the trace as `outside`."""
    times = dict.fromkeys((key for key, _ in REQUEST_SEGMENTS), 0.0)
    for piece in trace.critical_path:
        times[_segment(piece)] += piece.duration_ns / 1e6
    traced_ms = trace.customer_latency_ns / 1e6
    if measured_ms is not None:
        times["outside"] = max(0.0, measured_ms - traced_ms)
    return {key: round(value, 2) for key, value in times.items()}


def slowest_explain(
    store: SpanStore,
    requests: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    report_dir: Path,
) -> dict[str, list[dict[str, Any]]]:
    """For each mode's requests ({trace_id, ms, start, status}): its segments and a
    trace view in `report_dir/<trace_id>/index.html` (relative `view`), or why not."""
    explained: dict[str, list[dict[str, Any]]] = {}
    for mode, rows in requests.items():
        out = explained.setdefault(mode, [])
        for row in rows:
            trace_id = str(row["trace_id"])
            entry: dict[str, Any] = {**row, "found": False}
            try:
                trace = store.trace(trace_id)
            except TraceNotFound as error:
                out.append({**entry, "error": str(error)})
                continue
            label = f"{mode}: Tourney page, {float(row['ms']):.0f} ms"
            view = report_write(
                report_dir / trace_id,
                [Compared(label, trace)],
                source=store.describe(),
                intro=INTRO,
            )
            entry.update(
                found=True,
                view=str(view.relative_to(report_dir)),
                traced_ms=round(trace.customer_latency_ns / 1e6, 2),
                spans=len(trace.spans),
                segments_ms=request_segments(trace, float(row["ms"])),
            )
            out.append(entry)
    return explained


def slowest_write(
    store: SpanStore, requests_file: Path, *, report_dir: Path
) -> tuple[Path, int]:
    """`slowest_explain` of the requests in `requests_file`, written beside the views
    as `slowest-segments.json`; and how many of them have a trace."""
    requests = json.loads(requests_file.read_text())
    explained = slowest_explain(store, requests, report_dir=report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    out = report_dir / "slowest-segments.json"
    document = {
        "source": store.describe(),
        "segments": dict(REQUEST_SEGMENTS),
        "modes": explained,
    }
    out.write_text(json.dumps(document, indent=1) + "\n")
    found = sum(1 for rows in explained.values() for row in rows if row["found"])
    return out, found
