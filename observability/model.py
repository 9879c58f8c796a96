"""Traces as data: spans, the tree they form, the critical path and where time went.

A Trace is built from the spans of one trace id (and of traces that link to it). Its
tree follows parent ids, and links where a span has no parent in the trace (a
consumer that starts a trace of its own but links back to the producer).

Where the time went is read off the critical path, as Jaeger computes it: walking back
from the end of the purchase, each instant belongs to the deepest span the purchase was
waiting on. The end is the shop's answer (legacy) or the orders worker recording the
order fulfilled (strangler), even when other work (the `order-started` event applied
late) ran on after it. A span waits for the calls it makes, not for work it hands over
(a message, the outbox): the fulfillment task waits for the warehouse, not for the
orders worker applying the event it sent on the way. Time after a span ended while
work it started was still going on is waiting time. `outbox` is the relay's part:
waiting for it after the answer, and its publish (it may publish before the answer
has left, as it wakes at the commit); `queue` runs from a publish until the task
started. So the segments add up exactly to the purchase's window, and a segment is
the wall-clock time the customer's order spent there.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

from common.events import EVENT_TYPE_ATTRIBUTE
from observability.spans import (
    FULFILLED_EVENT,
    OUTBOX_SERVICE,
    SEGMENT_LABELS,
    SERVICE_SEGMENTS,
    STRANGLER_SERVICE,
    WAREHOUSE_API_PATH,
    WAREHOUSE_SERVICE,
    Span,
)


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
    def path(self) -> str:
        """The way the purchase went: "strangler" through the orders service, else
        "legacy", whatever the edge's mode (a canary edge sends some each way)."""
        if any(s.service == STRANGLER_SERVICE for s in self.spans):
            return "strangler"
        return "legacy"

    @property
    def mode(self) -> str:
        """The edge's mode (span or resource `edge.mode`), else the path it took."""
        for span in self.spans:
            mode = span.attributes.get("edge.mode") or span.resource.get("edge.mode")
            if mode:
                return str(mode)
        return self.path

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

    @cached_property
    def completion(self) -> Span | None:
        """The purchase's last step when it is not the trace's last span: the orders
        worker recording the order fulfilled (strangler). Work still going on beside
        it (the `order-started` event applied late) is not the purchase's."""
        recorded = [
            s
            for s in self.spans
            if s.kind == "consumer"
            and s.attributes.get(EVENT_TYPE_ATTRIBUTE) == FULFILLED_EVENT
            and self._reaches_root(s)
        ]
        return min(recorded, key=lambda s: s.end_ns) if recorded else None

    @property
    def completed_ns(self) -> int:
        """Until the purchase was complete: the answer and everything it waited for
        (legacy), the order recorded fulfilled (strangler). The segments add up to
        this; it is the trace's whole window unless other work ran on after it."""
        end = self.completion.end_ns if self.completion else self.end_ns
        return end - self.start_ns

    def _reaches_root(self, span: Span) -> bool:
        seen: set[str] = set()
        current: Span | None = span
        while current is not None and current.span_id not in seen:
            if current is self.root:
                return True
            seen.add(current.span_id)
            current = self.parent_of(current)
        return False

    def handed_over(self, span: Span) -> bool:
        """Whether the span's parent handed it work rather than waited for it: a
        link, a message's consumer, or another service that the parent did not
        call (the relay continuing the accept request's stored context)."""
        parent = self.parent_of(span)
        if parent is None:
            return False
        return (
            self.relation.get(span.span_id) == "link"
            or (parent.kind == "producer" and span.kind == "consumer")
            or (parent.service != span.service and parent.kind != "client")
        )

    def _effective_end(self, span: Span) -> int:
        """When the span and all the work it started, handed over or not, ended."""
        return self._ends[0][span.span_id]

    def _blocking_end(self, span: Span) -> int:
        """When the span and the work it waited for ended (no hand-over)."""
        return self._ends[1][span.span_id]

    @cached_property
    def _ends(self) -> tuple[dict[str, int], dict[str, int]]:
        effective: dict[str, int] = {}
        blocking: dict[str, int] = {}
        for span, _ in reversed(list(self.walk())):
            kids = self.children[span.span_id]
            effective[span.span_id] = max(
                [span.end_ns, *(effective.get(k.span_id, k.end_ns) for k in kids)]
            )
            blocking[span.span_id] = max(
                [
                    span.end_ns,
                    *(
                        blocking.get(k.span_id, k.end_ns)
                        for k in kids
                        if not self.handed_over(k)
                    ),
                ]
            )
        return effective, blocking

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

        def own(span: Span, start: int, end: int, awaited: Span | None) -> None:
            if start < span.end_ns:
                stop = min(end, span.end_ns)
                pieces.append(Piece(span, start, stop, False, self.segment_of(span)))
            if end > span.end_ns:
                begin = max(start, span.end_ns)
                waiting = self._waiting_segment(awaited)
                pieces.append(Piece(span, begin, end, True, waiting))

        # The path to the purchase's last step: walking back from it, each span on
        # the way is what its parent was waiting for first.
        toward: dict[str, Span] = {}
        step = self.completion
        while step is not None and (parent := self.parent_of(step)) is not None:
            toward[parent.span_id] = step
            step = parent

        def walk(span: Span, cursor: int) -> None:
            remaining = list(self.children[span.span_id])
            awaited: Span | None = None  # the child that starts where cursor is
            forced = toward.get(span.span_id)
            if forced is not None:
                remaining.remove(forced)
                kid_end = min(self._effective_end(forced), cursor)
                if kid_end < cursor:
                    own(span, kid_end, cursor, None)
                walk(forced, kid_end)
                cursor = max(forced.start_ns, span.start_ns)
                awaited = forced
            while cursor > span.start_ns:
                # While the span ran, it waited only for what it did not hand over,
                # and only until that ended; after it ended, the trace waited for
                # whatever work it had started (an order in the outbox, a queue).
                alive = cursor <= span.end_ns
                end_of = self._blocking_end if alive else self._effective_end
                candidates = [
                    kid
                    for kid in remaining
                    # one that started later ran beside a child already counted
                    if kid.start_ns < cursor and not (alive and self.handed_over(kid))
                ]
                if not candidates:
                    break
                kid = max(candidates, key=end_of)
                remaining.remove(kid)
                kid_end = min(end_of(kid), cursor)
                if kid_end < cursor:
                    own(span, kid_end, cursor, awaited)
                walk(kid, kid_end)
                cursor = max(kid.start_ns, span.start_ns)
                awaited = kid
            if cursor > span.start_ns:
                own(span, span.start_ns, cursor, awaited)

        walk(self.root, self.start_ns + self.completed_ns)
        return sorted(pieces, key=lambda p: p.start_ns)

    @staticmethod
    def _waiting_segment(awaited: Span | None) -> str:
        """Waiting for the outbox relay to publish, or for a queued task to start."""
        if (
            awaited is not None
            and awaited.service == OUTBOX_SERVICE
            and awaited.kind != "consumer"
        ):
            return "outbox"
        return "queue"

    def segment_times(self) -> dict[str, int]:
        """Nanoseconds of the critical path per segment; they add up to
        `completed_ns`, the purchase's window."""
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
