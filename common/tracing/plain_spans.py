"""Spans recorded without the SDK's `Span`: the edge's, and the services' own.

The SDK's span asks the sampler, validates every attribute, takes a lock for each
change and wraps its attributes and events in bounded containers: about 25 µs of CPU
a span, half of what a traced request cost the edge on top of an untraced one (the
export the other half), and with one request in twenty traced a quarter of the
edge's CPU a request went to tracing. The spans this project makes by hand need none
of it: their few attributes are our own strings and numbers, and whether they record
is known before they start. So a `PlainSpan` keeps them in plain fields and, when it
ends, hands the provider's span processors the SDK's own `ReadableSpan`, as the
SDK's span would: the exporters (redaction, the local store, OTLP) see the same spans
as before.

- The edge's spans (edge_router/tracing.py): its sampler records every span of a
  request the route table drew, so it always takes a `SpanRecorder`.
- The services' spans made by hand (`span_start`: the Django and event-loop server
  spans, `span_from_carrier`, `span_in_trace`): a `PlainSpan` where the services'
  sampler (common/tracing/sampling.py) would record the span for sure (a sampled
  parent, or a root its default sampler keeps), the SDK's tracer everywhere else
  (a parent not sampled, a client call inside a message's publish, another sampler
  named in the environment), so the decisions are the sampler's own.

A `PlainSpan` is a span of the tracing API: made current, the log lines, the trace
id a service answers with and `span_annotate` find it as they found the SDK's.
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

from common.tracing.sampling import ServicesSampler

SAMPLED = trace.TraceFlags(trace.TraceFlags.SAMPLED)


class SpanRecorder:
    """What plain spans need from the process's SDK tracer: its resource,
    instrumentation scope, id generator and span processors (read once)."""

    def __init__(self, tracer: Tracer) -> None:
        # The provider's span processors, all of them, as the SDK's spans get them.
        self.processor = tracer.span_processor
        self.resource = tracer.resource
        self.scope = tracer._instrumentation_scope
        self.info = tracer.instrumentation_info
        self.ids = tracer.id_generator
        self.sampler = tracer.sampler

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
        start_time: int | None = None,
    ) -> PlainSpan:
        """A span started now (or at `start_time`): under `parent` (local or
        remote) if it is valid, else the root of a new trace. Recorded and sampled:
        the caller knows its sampler would say so."""
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
        return PlainSpan(self, name, context, parent, kind, attributes, start_time)


class PlainSpan(trace.Span):
    """One span, recorded until `end`."""

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
        start_time: int | None = None,
    ) -> None:
        self._recorder, self._name, self._kind = recorder, name, kind
        self._context, self._parent = context, parent
        self._attributes = attributes
        self._events: list[Event] = []
        self._status = Status(StatusCode.UNSET)
        self._start_time = start_time or time.time_ns()
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
            # A list (captured headers) is kept as a tuple, as the SDK keeps it.
            self._attributes.update(
                (key, tuple(value) if isinstance(value, list) else value)
                for key, value in attributes.items()
            )

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
        """Links are set when a span starts; plain spans have none (a linked span is
        the SDK's: span_from_carrier)."""

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


_recorders: dict[str, SpanRecorder] = {}


def recorder_for(scope: str) -> SpanRecorder | None:
    """The recorder of instrumentation scope `scope` in this process (kept once the
    SDK's provider is in place), or None (no SDK provider yet, or tracing off)."""
    recorder = _recorders.get(scope)
    if recorder is None:
        recorder = SpanRecorder.for_provider(scope)
        if recorder is not None:
            _recorders[scope] = recorder
    return recorder


def plain_span(
    scope: str,
    name: str,
    kind: SpanKind,
    attributes: dict[str, AttributeValue],
    context: otel_context.Context | None,
    start_time: int | None = None,
) -> PlainSpan | None:
    """A plain span under the span of `context` (None: the current one) where the
    services' sampler records it for sure; None where the SDK's tracer must decide
    (common/tracing/sampling.py: ServicesSampler.records)."""
    recorder = recorder_for(scope)
    if recorder is None or not isinstance(recorder.sampler, ServicesSampler):
        return None
    parent = trace.get_current_span(context)
    if not recorder.sampler.records(kind, context, parent):
        return None
    parent_context = parent.get_span_context()
    return recorder.span(
        name,
        kind,
        attributes,
        parent_context if parent_context.is_valid else None,
        start_time,
    )


@contextlib.contextmanager
def span_current(span: trace.Span) -> Iterator[trace.Span]:
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
