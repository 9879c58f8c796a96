"""The edge's spans, recorded without the SDK's `Span` (see edge_router/tracing.py).

The SDK's span asks the sampler, validates every attribute, takes a lock for each
change and wraps its attributes and events in bounded containers: about 25 µs of CPU
a span, half of what a traced request cost the edge on top of an untraced one (the
export the other half), and with one request in twenty traced a quarter of the
edge's CPU a request went to tracing. The edge's spans need none of it: its sampler
records every span of a request the route table drew (common/tracing/core.py), and
their few attributes are the edge's own strings and numbers. So an `EdgeSpan` keeps
them in plain fields and, when it ends, hands the provider's span processors the
SDK's own `ReadableSpan`, as the SDK's span would: the exporters (redaction, the
local store, OTLP) see the same spans as before.

An `EdgeSpan` is a span of the tracing API: made current, the log lines, the trace
id the edge answers with and `span_annotate` find it as they found the SDK's.
"""

from __future__ import annotations

import contextlib
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import Event, ReadableSpan, Tracer, TracerProvider
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.util.types import Attributes, AttributeValue

SAMPLED = trace.TraceFlags(trace.TraceFlags.SAMPLED)


class SpanRecorder:
    """What the edge's spans need from the process's SDK tracer: its resource,
    instrumentation scope, id generator and span processors (read once)."""

    def __init__(self, tracer: Tracer) -> None:
        # The provider's span processors, all of them, as the SDK's spans get them.
        self.processor = tracer.span_processor
        self.resource = tracer.resource
        self.scope = tracer._instrumentation_scope
        self.info = tracer.instrumentation_info
        self.ids = tracer.id_generator

    @classmethod
    def for_provider(cls, name: str) -> SpanRecorder | None:
        """The recorder of the SDK provider in place, or None (no SDK provider)."""
        provider = trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            return None
        tracer = provider.get_tracer(name)
        return cls(tracer) if isinstance(tracer, Tracer) else None

    def span(
        self,
        name: str,
        kind: SpanKind,
        attributes: dict[str, AttributeValue],
        parent: SpanContext | None,
    ) -> EdgeSpan:
        """A span started now: under `parent` (local or remote) if it is valid, else
        the root of a new trace. Recorded and sampled, as the edge's sampler says."""
        if parent is not None and parent.is_valid:
            trace_id, state = parent.trace_id, parent.trace_state
        else:
            parent, state = None, None
            trace_id = self.ids.generate_trace_id()
        context = SpanContext(
            trace_id,
            self.ids.generate_span_id(),
            is_remote=False,
            trace_flags=SAMPLED,
            trace_state=state,
        )
        return EdgeSpan(self, name, context, parent, kind, attributes)


class EdgeSpan(trace.Span):
    """One span of the edge, recorded until `end`."""

    __slots__ = (
        "_attributes",
        "_context",
        "_end_time",
        "_events",
        "_kind",
        "_name",
        "_parent",
        "_recorder",
        "_start_time",
        "_status",
    )

    def __init__(
        self,
        recorder: SpanRecorder,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: dict[str, AttributeValue],
    ) -> None:
        self._recorder, self._name, self._kind = recorder, name, kind
        self._context, self._parent = context, parent
        self._attributes = attributes
        self._events: list[Event] = []
        self._status = Status(StatusCode.UNSET)
        self._start_time = time.time_ns()
        self._end_time: int | None = None

    def get_span_context(self) -> SpanContext:
        return self._context

    def is_recording(self) -> bool:
        return self._end_time is None

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        if self._end_time is None:
            self._attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> None:
        if self._end_time is None:
            self._attributes.update(attributes)

    def update_name(self, name: str) -> None:
        if self._end_time is None:
            self._name = name

    def set_status(
        self, status: Status | StatusCode, description: str | None = None
    ) -> None:
        # As the SDK's: OK is final, UNSET changes nothing.
        if self._end_time is not None or self._status.status_code is StatusCode.OK:
            return
        if isinstance(status, Status):
            if status.status_code is not StatusCode.UNSET:
                self._status = status
        elif status is not StatusCode.UNSET:
            self._status = Status(status, description)

    def add_event(
        self, name: str, attributes: Attributes = None, timestamp: int | None = None
    ) -> None:
        if self._end_time is None:
            self._events.append(Event(name, attributes, timestamp))

    def add_link(self, context: SpanContext, attributes: Attributes = None) -> None:
        """Links are set when a span starts; the edge's have none."""

    def record_exception(
        self,
        exception: BaseException,
        attributes: Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        """The `exception` event, as the SDK's span writes it."""
        module = type(exception).__module__
        qualname = type(exception).__qualname__
        named: dict[str, Any] = {
            "exception.type": (
                f"{module}.{qualname}" if module and module != "builtins" else qualname
            ),
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        named.update(attributes or {})
        self.add_event("exception", named, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self._end_time is not None:
            return
        self._end_time = end_time or time.time_ns()
        recorder = self._recorder
        links: Sequence[Link] = ()
        # As the SDK's span hands itself on (its `_readable_span`), in its order.
        readable = ReadableSpan(
            self._name, self._context, self._parent, recorder.resource,
            self._attributes, self._events, links, self._kind, recorder.info,
            self._status, self._start_time, self._end_time, recorder.scope,
        )  # fmt: skip
        recorder.processor.on_end(readable)


@contextlib.contextmanager
def span_current(span: EdgeSpan) -> Iterator[EdgeSpan]:
    """`span` as the current span until the block ends, then ended; an exception
    out of the block is recorded on it as the SDK's `start_as_current_span` does."""
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        yield span
    except Exception as error:
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        raise
    finally:
        otel_context.detach(token)
        span.end()
