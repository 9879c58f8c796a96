"""The services' samplers: where a trace may start, and which calls inside one are
not recorded. Free of Django and Celery (the edge imports it through `core`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)


class NoBareClientRoots(Sampler):
    """Drops a root CLIENT span (an outgoing call with no parent); asks `then` about
    every other root (all of them by default, or a ratio of them).

    Under ParentBased, children follow their parent as the standard sampler does;
    only where a trace would begin does this differ from `parentbased_always_on`
    (or `parentbased_traceidratio`).
    """

    def __init__(self, then: Sampler = ALWAYS_ON) -> None:
        self.then = then

    def should_sample(
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: trace.SpanKind | None = None,
        attributes: Any = None,
        links: Any = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        if kind == trace.SpanKind.CLIENT:
            return SamplingResult(Decision.DROP, None, trace_state)
        return self.then.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"NoBareClientRoots{{{self.then.get_description()}}}"


# The instrumentation scope of Celery's spans (its `apply_async/<task>` producer).
CELERY_SCOPE = "opentelemetry.instrumentation.celery"


# Set in the context while a message is handed to the broker (message_publishing).
_PUBLISHING = otel_context.create_key("common.tracing.publishing")


@contextmanager
def message_publishing() -> Iterator[None]:
    """A message handed to the broker (common.events' Celery publisher, a websocket
    push's `orders.push`): the client call that carries it (Redis `LPUSH`,
    `PUBLISH`) is not recorded, see NoClientInProducer.

    Celery's producer span cannot say so itself when a task is sent by name (the
    relay, the workers' events): the instrumentation finds no task object, so it
    neither keeps that span open over the publish nor ends it after; the span ends
    at once and the `LPUSH` was recorded beside it, a span a message.

    The instrumentations are suppressed as well, so the Redis client's wrapper
    calls straight through instead of making a span the sampler then drops (a
    context, a sampler call and a non-recording span a message: 50 µs of the
    relay's CPU an order, py-spy, 2026-12-06). Suppression reaches only the
    instrumentations: Celery's producer span is made in its `before_task_publish`
    signal by the SDK's tracer, which does not look, so the message still carries
    its trace context in its headers (tests/observability/test_strangler_trace.py).
    The key stays for any instrumentation that does not honour suppression.
    """
    token = otel_context.attach(otel_context.set_value(_PUBLISHING, True))
    try:
        with suppress_instrumentation():
            yield
    finally:
        otel_context.detach(token)


class NoClientInProducer(Sampler):
    """Records a child as its parent was (the SDK's `local_parent_sampled`
    default), but a CLIENT span made while a message is handed to the broker:
    inside `message_publishing()`, or under Celery's PRODUCER span (the Redis
    `LPUSH` of `apply_async`; the `PUBLISH` under our own `orders.push`, which
    publishes inside `message_publishing()`). The publish's span covers the same
    time and says what was sent where; the nested call's span added a span's creation,
    attributes and export to every message for nothing the waterfall or the
    segments use. Its context goes nowhere (Redis carries no traceparent), so that
    it is not recorded changes nothing downstream.
    """

    def should_sample(
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: trace.SpanKind | None = None,
        attributes: Any = None,
        links: Any = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context)
        # The parent's tracestate goes on, as the SDK's own samplers carry it.
        state = parent.get_span_context().trace_state
        if client_dropped(kind, parent_context, parent):
            return SamplingResult(Decision.DROP, None, state)
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, state)

    def get_description(self) -> str:
        return "NoClientInProducer"


def client_dropped(
    kind: trace.SpanKind | None,
    context: otel_context.Context | None,
    parent: trace.Span,
) -> bool:
    """A CLIENT span made while a message is handed to the broker, under a local
    sampled parent: not recorded (NoClientInProducer)."""
    return kind == trace.SpanKind.CLIENT and bool(
        otel_context.get_value(_PUBLISHING, context) or _celery_producer(parent)
    )


def _celery_producer(span: trace.Span) -> bool:
    # Only the SDK's spans (a local parent) say their kind and scope.
    scope = getattr(span, "instrumentation_scope", None)
    return (
        getattr(span, "kind", None) == trace.SpanKind.PRODUCER
        and scope is not None
        and scope.name == CELERY_SCOPE
    )


class ServicesSampler(ParentBased):
    """The services' sampler: children follow their parent (NoClientInProducer
    under a local one), a root is `root`'s to decide. It can say beforehand where it
    records a span for sure, so that a span made by hand can skip the SDK's Span
    (common/tracing/plain_spans.py)."""

    def __init__(self, root: NoBareClientRoots) -> None:
        super().__init__(root=root, local_parent_sampled=NoClientInProducer())
        self.roots_kept = root.then is ALWAYS_ON

    def records(
        self,
        kind: trace.SpanKind,
        context: otel_context.Context | None,
        parent: trace.Span,
    ) -> bool:
        """Would a span of `kind` under `parent` (the span of `context`) be
        recorded, whatever its trace id? False where it would not, or where only
        should_sample can say (a root drawn by a ratio)."""
        parent_context = parent.get_span_context()
        if not parent_context.is_valid:
            return self.roots_kept and kind != trace.SpanKind.CLIENT
        if not parent_context.trace_flags.sampled:
            return False
        # A remote sampled parent: ParentBased's default, ALWAYS_ON.
        return parent_context.is_remote or not client_dropped(kind, context, parent)


def services_sampler(service_name: str) -> Sampler | None:
    """The edge's own (the route table decides there); in the services ours, by
    default and for `parentbased_traceidratio` (a share of the traces that start in
    a service); any other OTEL_TRACES_SAMPLER the SDK reads itself."""
    if service_name == "edge":
        # The edge makes a server span only for a request it chose to trace
        # (edge_router/tracing.py): that span records, whatever the flag of the
        # visitor's traceparent; every other span follows its parent.
        return ParentBased(
            root=NoBareClientRoots(),
            remote_parent_sampled=ALWAYS_ON,
            remote_parent_not_sampled=ALWAYS_ON,
        )
    name = os.environ.get("OTEL_TRACES_SAMPLER", "").strip().lower()
    if not name:
        return ServicesSampler(NoBareClientRoots())
    if name == "parentbased_traceidratio":
        try:
            ratio = float(os.environ.get("OTEL_TRACES_SAMPLER_ARG", "1.0"))
        except ValueError:
            ratio = 1.0
        ratio = ratio if 0.0 <= ratio <= 1.0 else 1.0
        return ServicesSampler(NoBareClientRoots(TraceIdRatioBased(ratio)))
    return None
