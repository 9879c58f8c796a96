"""The edge's spans, recorded without the SDK's Span (common/tracing/plain_spans.py),
are what the SDK's tracer made of the same request, field for field in the span store's
lines: ids and times aside, which are drawn and read anew for every span.

Each case records a server span and its client span twice, once with the SDK's
`start_as_current_span` (what the edge did before) and once with a SpanRecorder,
with a real tracer provider and the edge's own sampler.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from common.otlp_files import otlp_json_line
from common.tracing.logs import current_ids
from common.tracing.plain_spans import SpanRecorder, span_current
from common.tracing.sampling import services_sampler

VISITOR = SpanContext(
    int("0af7651916cd43dd8448eb211c80319c", 16),
    int("b7ad6b7169203331", 16),
    is_remote=True,
    trace_flags=TraceFlags(TraceFlags.DEFAULT),
)
Opener = Callable[
    [str, SpanKind, dict[str, Any], SpanContext | None],
    AbstractContextManager[trace.Span],
]


@pytest.fixture
def provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    kept = InMemorySpanExporter()
    provider = TracerProvider(sampler=services_sampler("edge"))
    provider.add_span_processor(SimpleSpanProcessor(kept))
    return provider, kept


def _sdk(provider: TracerProvider) -> Opener:
    tracer = provider.get_tracer("edge_router.tracing")

    def opened(
        name: str, kind: SpanKind, attributes: dict[str, Any], parent: Any
    ) -> AbstractContextManager[trace.Span]:
        context = (
            None
            if parent is None
            else trace.set_span_in_context(trace.NonRecordingSpan(parent))
        )
        return tracer.start_as_current_span(
            name, context=context, kind=kind, attributes=attributes
        )

    return opened


def _recorded(provider: TracerProvider) -> Opener:
    recorder = SpanRecorder(provider.get_tracer("edge_router.tracing"))  # type: ignore[arg-type]

    def opened(
        name: str, kind: SpanKind, attributes: dict[str, Any], parent: Any
    ) -> AbstractContextManager[trace.Span]:
        return span_current(recorder.span(name, kind, attributes, parent))

    return opened


def _request(opened: Opener, *, visitor: SpanContext | None, fails: bool) -> None:
    """A traced request: the server span, the client span under it (whose call
    times out when `fails`), the origin's status, the edge's 504 or 503."""
    server_attributes = {"http.request.method": "GET", "url.path": "/shop/"}
    with opened("GET /shop/", SpanKind.SERVER, server_attributes, visitor) as server:
        server.set_attributes({"edge.route": "shop", "edge.mode": "legacy"})
        parent = trace.get_current_span().get_span_context()
        client_attributes = {"url.full": "http://o/shop/?token=x", "server.port": 1}
        try:
            with opened("GET", SpanKind.CLIENT, client_attributes, parent) as client:
                if fails:
                    raise TimeoutError("the origin is slow")
                client.set_attribute("http.response.status_code", 503)
                client.set_status(Status(StatusCode.ERROR))
        except TimeoutError:
            pass
        server.set_attribute("http.response.status_code", 504 if fails else 503)
        server.set_status(Status(StatusCode.ERROR))


def _line(spans: tuple[ReadableSpan, ...]) -> tuple[str, list[tuple[str, Any]]]:
    """The store's line with ids, times and traceback frames blanked; and each
    span's (trace id, parent span id) named by role."""
    document = json.loads(otlp_json_line(list(spans)))
    found = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    ids = {span["spanId"]: span["name"] for span in found}
    roles = [
        (
            span["traceId"],
            ids.get(span.get("parentSpanId", ""), span.get("parentSpanId")),
        )
        for span in found
    ]
    text = re.sub(r'"\d{19}"', '"T"', json.dumps(document))
    text = re.sub(r"[0-9a-f]{32}|[0-9a-f]{16}", "X", text)
    return re.sub(r'"Traceback(?:[^"\\]|\\.)*"', '"TB"', text), roles


@pytest.mark.parametrize("visitor", [None, VISITOR], ids=["new trace", "visitor's"])
@pytest.mark.parametrize("fails", [False, True], ids=["503", "timeout"])
def test_the_recorded_spans_are_the_sdks_field_for_field(
    provider: tuple[TracerProvider, InMemorySpanExporter],
    visitor: SpanContext | None,
    fails: bool,
) -> None:
    tracer_provider, kept = provider
    _request(_sdk(tracer_provider), visitor=visitor, fails=fails)
    by_sdk = kept.get_finished_spans()
    kept.clear()
    _request(_recorded(tracer_provider), visitor=visitor, fails=fails)
    recorded = kept.get_finished_spans()

    assert len(recorded) == 2
    assert _line(recorded)[0] == _line(by_sdk)[0]
    (client_trace, client_parent), (server_trace, server_parent) = _line(recorded)[1]
    assert client_parent == "GET /shop/"
    assert client_trace == server_trace
    if visitor is None:
        assert server_parent is None
    else:
        assert server_trace == format(visitor.trace_id, "032x")
        assert server_parent == format(visitor.span_id, "016x")


def test_a_recorded_span_is_the_current_one_until_it_ends(
    provider: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    tracer_provider, kept = provider
    recorder = SpanRecorder(tracer_provider.get_tracer("edge_router.tracing"))  # type: ignore[arg-type]
    span = recorder.span("GET /", SpanKind.SERVER, {}, None)
    context = span.get_span_context()

    with span_current(span):
        ids = current_ids()
        assert not kept.get_finished_spans()

    assert ids == (format(context.trace_id, "032x"), format(context.span_id, "016x"))
    assert context.trace_flags.sampled
    assert current_ids() == ("-", "-")
    assert [s.name for s in kept.get_finished_spans()] == ["GET /"]
    assert not span.is_recording()
