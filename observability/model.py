"""Traces as data: spans, the tree they form, the critical path and where time went.

A Trace is built from the spans of one trace id (and of traces that link to it). Its
tree follows parent ids, and links where a span has no parent in the trace (a
consumer that starts a trace of its own but links back to the producer).

Where the time went is read off the critical path, as Jaeger computes it: walking back
from the end, each instant belongs to the deepest span the trace was waiting on. Time
after a span ended while work it started was still going on (an accepted order in a
queue) is waiting time. So the segments add up exactly to the trace's window, from
the first request until the last span ended, and a segment is the wall-clock time
the customer's order spent there.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

KIND_NAMES = {0: "unspecified", 1: "internal", 2: "server", 3: "client"}
KIND_NAMES |= {4: "producer", 5: "consumer"}
STATUS_NAMES = {0: "unset", 1: "ok", 2: "error"}

# Segments in the order a purchase meets them; labels as the report shows them.
SEGMENTS: tuple[tuple[str, str], ...] = (
    ("edge", "edge"),
    ("view", "shop / orders view"),
    ("db", "DB (PostgreSQL)"),
    ("redis", "Redis"),
    ("warehouse", "warehouse wait"),
    ("queue", "queue wait"),
    ("worker", "worker"),
    ("other", "other"),
)
SEGMENT_LABELS = dict(SEGMENTS)
SERVICE_SEGMENTS = {
    "edge": "edge",
    "shop": "view",
    "orders-api": "view",
    "fulfillment-worker": "worker",
    "orders-worker": "worker",
    "outbox-relay": "worker",
    "warehouse": "warehouse",
}
WAREHOUSE_SERVICE = "warehouse"
# The warehouse's API path: a call to it counts as warehouse wait even when the
# warehouse itself sent no spans.
WAREHOUSE_API_PATH = "/fulfilments/"


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: str
    service: str
    start_ns: int
    end_ns: int
    attributes: Mapping[str, Any] = field(default_factory=dict)
    resource: Mapping[str, Any] = field(default_factory=dict)
    status: str = "unset"
    links: tuple[tuple[str, str], ...] = ()
    scope: str = ""
    trace_state: str = ""

    @property
    def duration_ns(self) -> int:
        return max(0, self.end_ns - self.start_ns)

    def attribute(self, *names: str) -> Any:
        """The first of `names` set on the span (old and new semantic conventions)."""
        for name in names:
            if name in self.attributes:
                return self.attributes[name]
        return None

    @property
    def db_system(self) -> str:
        return str(self.attribute("db.system.name", "db.system") or "")

    @property
    def http_method(self) -> str:
        return str(self.attribute("http.request.method", "http.method") or "")

    @property
    def http_target(self) -> str:
        value = self.attribute("url.path", "http.target")
        if value:
            return str(value).split("?", 1)[0]
        full = str(self.attribute("url.full", "http.url") or "")
        if "://" in full:
            return "/" + full.split("://", 1)[1].partition("/")[2].split("?", 1)[0]
        return ""

    @property
    def http_status(self) -> int | None:
        value = self.attribute("http.response.status_code", "http.status_code")
        try:
            return int(value) if value is not None else None
        except (TypeError, ValueError):
            return None

    @property
    def label(self) -> str:
        if self.db_system:
            statement = str(self.attribute("db.statement", "db.query.text") or "")
            if statement.upper().startswith(self.name.upper()):
                return statement[:80]
            return f"{self.name} {statement[:80]}".strip()
        if self.kind == "client" and self.http_target:
            return f"{self.http_method or self.name} {self.http_target}"
        if self.kind == "server" and self.http_target:
            return f"{self.http_method} {self.http_target}".strip()
        return self.name


@dataclass(frozen=True)
class Piece:
    """A stretch of the critical path: a span's own time, or waiting after it ended."""

    span: Span
    start_ns: int
    end_ns: int
    waiting: bool
    segment: str

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


class Trace:
    """The spans of one purchase as a tree, with its timings."""

    def __init__(self, trace_id: str, spans: list[Span]) -> None:
        if not spans:
            raise ValueError(f"trace {trace_id} has no spans")
        self.trace_id = trace_id
        unique = {span.span_id: span for span in spans}
        self.spans = sorted(unique.values(), key=lambda s: (s.start_ns, -s.end_ns))
        self.by_id = {span.span_id: span for span in self.spans}
        self.children: dict[str, list[Span]] = {s.span_id: [] for s in self.spans}
        self.relation: dict[str, str] = {}
        self._parents: dict[str, Span] = {}
        self.roots: list[Span] = []
        for span in self.spans:
            parent = self.by_id.get(span.parent_id) if span.parent_id else None
            if parent is None:
                parent = next(
                    (self.by_id[sid] for _, sid in span.links if sid in self.by_id),
                    None,
                )
                relation = "link"
            else:
                relation = "parent"
            if parent is None or parent is span:
                self.roots.append(span)
            else:
                self.children[parent.span_id].append(span)
                self.relation[span.span_id] = relation
                self._parents[span.span_id] = parent

    # --- shape -----------------------------------------------------------------------

    @cached_property
    def root(self) -> Span:
        """The trace's first request: the earliest root (the longest on a tie)."""
        return min(self.roots, key=lambda s: (s.start_ns, -s.duration_ns))

    def parent_of(self, span: Span) -> Span | None:
        """The span's parent in the tree: by parent id, or by link (see relation)."""
        return self._parents.get(span.span_id)

    def walk(self) -> Iterator[tuple[Span, int]]:
        """Every span with its depth, parents before children, roots by start."""
        stack = [(root, 0) for root in reversed(self.roots)]
        seen: set[str] = set()
        while stack:
            span, depth = stack.pop()
            if span.span_id in seen:
                continue  # links that loop back are not followed twice
            seen.add(span.span_id)
            yield span, depth
            kids = sorted(self.children[span.span_id], key=lambda s: s.start_ns)
            stack.extend((kid, depth + 1) for kid in reversed(kids))

    def missing_parents(self) -> set[str]:
        """Parent ids no span of the trace has (not flushed yet, or the caller's)."""
        return {
            s.parent_id
            for s in self.spans
            if s.parent_id and s.parent_id not in self.by_id
        }

    @cached_property
    def services(self) -> list[str]:
        seen: dict[str, None] = {}
        for span, _ in self.walk():
            seen.setdefault(span.service)
        return list(seen)

    @property
    def mode(self) -> str:
        """The edge's mode (span or resource `edge.mode`), else the path it took."""
        for span in self.spans:
            mode = span.attributes.get("edge.mode") or span.resource.get("edge.mode")
            if mode:
                return str(mode)
        if any(s.service == "orders-api" for s in self.spans):
            return "strangler"
        return "legacy"

    # --- timings ---------------------------------------------------------------------

    @property
    def start_ns(self) -> int:
        return self.root.start_ns

    @cached_property
    def end_ns(self) -> int:
        return max(self._effective_end(self.root), self.root.end_ns)

    @property
    def customer_latency_ns(self) -> int:
        """Request until answer: the first request's server span (or the root)."""
        entry = next(
            (s for s, _ in self.walk() if s.kind == "server"),
            self.root,
        )
        return entry.end_ns - self.start_ns

    @cached_property
    def fulfilled_ns(self) -> int | None:
        """Until the warehouse answered the fulfilment (None: not in this trace)."""
        ends = [
            s.end_ns
            for s in self.spans
            if s.service == WAREHOUSE_SERVICE
            and s.kind == "server"
            and (s.http_status is None or 200 <= s.http_status < 300)
        ]
        return max(ends) - self.start_ns if ends else None

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    def _effective_end(self, span: Span) -> int:
        return self._effective_ends[span.span_id]

    @cached_property
    def _effective_ends(self) -> dict[str, int]:
        ends: dict[str, int] = {}
        for span, _ in reversed(list(self.walk())):
            kids = self.children[span.span_id]
            ends[span.span_id] = max(
                [span.end_ns, *(ends.get(k.span_id, k.end_ns) for k in kids)]
            )
        return ends

    @cached_property
    def _warehouse_calls(self) -> set[str]:
        """Spans inside a call to the warehouse: the call, the warehouse, below."""
        inside: set[str] = set()
        for span, _ in self.walk():
            parent = self.parent_of(span)
            if (
                (parent is not None and parent.span_id in inside)
                or span.service == WAREHOUSE_SERVICE
                or (span.kind == "client" and self._calls_warehouse(span))
            ):
                inside.add(span.span_id)
        return inside

    def _calls_warehouse(self, span: Span) -> bool:
        if span.http_target.startswith(WAREHOUSE_API_PATH):
            return True
        return any(k.service == WAREHOUSE_SERVICE for k in self.children[span.span_id])

    def segment_of(self, span: Span) -> str:
        if span.span_id in self._warehouse_calls:
            return "warehouse"
        if span.db_system == "redis":
            return "redis"
        if span.db_system:
            return "db"
        return SERVICE_SEGMENTS.get(span.service, "other")

    @cached_property
    def critical_path(self) -> list[Piece]:
        pieces: list[Piece] = []

        def own(span: Span, start: int, end: int) -> None:
            if start < span.end_ns:
                stop = min(end, span.end_ns)
                pieces.append(Piece(span, start, stop, False, self.segment_of(span)))
            if end > span.end_ns:
                begin = max(start, span.end_ns)
                pieces.append(Piece(span, begin, end, True, "queue"))

        def walk(span: Span, cursor: int) -> None:
            kids = sorted(
                self.children[span.span_id], key=self._effective_end, reverse=True
            )
            for kid in kids:
                if cursor <= span.start_ns:
                    break
                if kid.start_ns >= cursor:
                    continue  # ran beside a later child: not what the trace waited on
                kid_end = min(self._effective_end(kid), cursor)
                if kid_end < cursor:
                    own(span, kid_end, cursor)
                walk(kid, kid_end)
                cursor = max(kid.start_ns, span.start_ns)
            if cursor > span.start_ns:
                own(span, span.start_ns, cursor)

        walk(self.root, self.end_ns)
        return sorted(pieces, key=lambda p: p.start_ns)

    def segment_times(self) -> dict[str, int]:
        """Nanoseconds of the critical path per segment; they add up to the window."""
        times = dict.fromkeys(SEGMENT_LABELS, 0)
        for piece in self.critical_path:
            times[piece.segment] += piece.duration_ns
        return times

    def critical_path_by_service(self) -> dict[str, int]:
        times: dict[str, int] = {}
        for piece in self.critical_path:
            name = "(waiting)" if piece.waiting else piece.span.service
            times[name] = times.get(name, 0) + piece.duration_ns
        return times

    def self_time(self, span: Span) -> int:
        """The span's duration less the time any of its children covered."""
        covered = 0
        cursor = span.start_ns
        for kid in sorted(self.children[span.span_id], key=lambda s: s.start_ns):
            start, end = max(kid.start_ns, cursor), min(kid.end_ns, span.end_ns)
            if end > start:
                covered += end - start
                cursor = end
        return span.duration_ns - covered

    def service_times(self) -> dict[str, int]:
        """Busy time per service: the sum of its spans' self times."""
        times: dict[str, int] = {}
        for span in self.spans:
            times[span.service] = times.get(span.service, 0) + self.self_time(span)
        return times

    @property
    def has_error(self) -> bool:
        return any(
            s.status == "error" or (s.kind == "server" and (s.http_status or 0) >= 500)
            for s in self.spans
        )
