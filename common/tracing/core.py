"""Tracing's core, free of Django and Celery: the provider, sampler and exporter of a
process, the official client instrumentations, and the helpers that read and carry
the current trace. The edge (no Django) imports it; so does every service.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.util.types import AttributeValue

from common.otlp_files import JsonLinesSpanExporter
from common.tracing.plain_spans import plain_span, span_current
from common.tracing.redaction import RedactingSpanExporter
from common.tracing.sampling import (
    NoBareClientRoots,
    message_publishing,
    services_sampler,
)

# Re-exported: where they were first found.
__all__ = ["NoBareClientRoots", "message_publishing"]

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
SERVICE_NAMES = frozenset(
    {
        "edge",
        "shop",
        "orders-api",
        "fulfillment-worker",
        "warehouse",
        "orders-worker",
        "outbox-relay",
    }
)
# Never traced, whatever the environment says: health probes every few seconds,
# metrics scrapes and static files would bury the purchases. Paths of every service
# (the edge's own `/_edge/` ones too, should a request reach an instrumentation).
NEVER_TRACED_PATHS = (
    "/healthz",
    "/readyz",
    "/metrics",
    "/favicon.ico",
    "/_edge/healthz",
    "/_edge/metrics",
)
NEVER_TRACED_PREFIXES = ("/static/",)
# The instrumentations match these against `scheme://host/path` (no query): anchored
# on the path, so that `/api/x/metrics` or `/shop/static/` would still be traced.
_URL_HOST = "^[^/]*//[^/]*"
NEVER_TRACED_URLS = ",".join(
    [f"{_URL_HOST}{re.escape(path)}$" for path in NEVER_TRACED_PATHS]
    + [f"{_URL_HOST}{re.escape(prefix)}" for prefix in NEVER_TRACED_PREFIXES]
)
# The local store is a file append: flush often so `traces compare` waits little.
LOCAL_SCHEDULE_DELAY_MS = 500

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Any]
ASGIApp = Callable[..., Any]

_lock = threading.Lock()
_setup_pid: int | None = None


def tracing_enabled() -> bool:
    """False when OTEL_SDK_DISABLED is true: then nothing is set up or patched."""
    flag = os.environ.get("OTEL_SDK_DISABLED", "").strip().lower()
    return flag not in {"true", "1", "yes", "on"}


def traces_dir() -> Path:
    return Path(os.environ.get("TRACES_DIR") or ROOT / ".data" / "traces")


def _resource(service_name: str, edge_mode: str | None) -> Resource:
    attributes: dict[str, str] = {
        "service.name": service_name,
        "service.instance.id": str(uuid.uuid4()),
        "deployment.environment": os.environ.get("DEPLOYMENT_ENVIRONMENT", "demo"),
    }
    if edge_mode:
        attributes["edge.mode"] = edge_mode
    # Resource.create lets our attributes win; the environment's must win over ours
    # (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES), so merge it once more on top.
    return Resource.create(attributes).merge(OTELResourceDetector().detect())


def _exporter(service_name: str) -> tuple[SpanExporter | None, int | None]:
    """The exporter the environment asks for, and the batch delay it wants."""
    if os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return None, None
    if os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    ):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter,
        )

        return OTLPSpanExporter(), None
    delay = None if "OTEL_BSP_SCHEDULE_DELAY" in os.environ else LOCAL_SCHEDULE_DELAY_MS
    return JsonLinesSpanExporter(traces_dir(), service_name=service_name), delay


def tracing_setup(service_name: str, *, edge_mode: str | None = None) -> None:
    """Install this process's tracer provider and exporter, once per process.

    Call it in the process that makes the spans, after any fork: the batch
    processor's thread and the exporter's file or connection belong to one process.
    A provider inherited from a parent that set up before forking carries on (the
    SDK restarts its batch thread after a fork and the file exporter opens a file of
    its own), since OpenTelemetry lets a process set its provider only once.

    Threads may call it at once (a Celery thread pool's first tasks): the pid is
    recorded only once the provider is in place, so no caller goes on to make spans
    against a provider still being built (they would not be recorded).
    """
    global _setup_pid
    pid = os.getpid()
    if _setup_pid == pid:
        return
    with _lock:
        if _setup_pid == pid:
            return
        if service_name not in SERVICE_NAMES:
            raise ValueError(
                f"unknown service {service_name!r}: one of {sorted(SERVICE_NAMES)}"
            )
        inherited = _setup_pid is not None
        if not inherited and tracing_enabled():
            provider = TracerProvider(
                resource=_resource(service_name, edge_mode),
                sampler=services_sampler(service_name),
            )
            exporter, delay = _exporter(service_name)
            if exporter is not None:
                # Every span is cleaned of secrets on its way out, whoever made it.
                provider.add_span_processor(
                    BatchSpanProcessor(
                        RedactingSpanExporter(exporter), schedule_delay_millis=delay
                    )
                )
            trace.set_tracer_provider(provider)
            logger.debug("tracing set up for %s (pid %s)", service_name, pid)
        _setup_pid = pid


# --- official instrumentations: patches only, safe before a fork --------------------


def excluded_urls(instrumentation: str) -> str:
    """The URLs an instrumentation (`DJANGO`, `ASGI`) must not trace: ours, and those
    the environment names, as the instrumentations read it themselves
    (`OTEL_PYTHON_<INSTRUMENTATION>_EXCLUDED_URLS`, else `OTEL_PYTHON_EXCLUDED_URLS`).

    Passed explicitly: an instrumentation given none reads the environment alone
    and would trace health probes once a variable is set; the ASGI middleware
    reads nothing at all.
    """
    return ",".join([NEVER_TRACED_URLS, *environment_excluded_urls(instrumentation)])


def environment_excluded_urls(instrumentation: str) -> list[str]:
    """The patterns the environment names for an instrumentation (`DJANGO`, `ASGI`):
    `OTEL_PYTHON_<INSTRUMENTATION>_EXCLUDED_URLS`, else `OTEL_PYTHON_EXCLUDED_URLS`."""
    named = os.environ.get(
        f"OTEL_PYTHON_{instrumentation}_EXCLUDED_URLS"
    ) or os.environ.get("OTEL_PYTHON_EXCLUDED_URLS", "")
    # An empty item (a trailing comma) would be a pattern that matches every URL.
    return [pattern.strip() for pattern in named.split(",") if pattern.strip()]


def instrument_once(instrumentor: Any, **kwargs: Any) -> None:
    if tracing_enabled() and not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(**kwargs)


def instrument_clients() -> None:
    """Client spans for PostgreSQL (psycopg), Redis and httpx (the services' clients;
    the edge makes its own client spans: edge_router/tracing.py)."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    instrument_once(PsycopgInstrumentor())
    instrument_once(RedisInstrumentor())
    instrument_once(HTTPXClientInstrumentor())


def instrument_aiohttp_client() -> None:
    """Client spans for aiohttp, their context sent on in `traceparent`.

    Sessions made after this call are traced (the instrumentation adds its trace
    config when a ClientSession is built).
    """
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor

    instrument_once(AioHttpClientInstrumentor())


# --- the current trace ---------------------------------------------------------------


@functools.cache
def tracer_named(name: str) -> trace.Tracer:
    """The tracer of an instrumentation scope, got once per process: the SDK's
    `get_tracer` builds and compares a scope (and sets up a warnings filter) at
    every call, which cost a sampled request at the edge a third of its tracing.
    Got before tracing_setup it is the API's proxy, which finds the provider's
    tracer once there is one."""
    return trace.get_tracer(name)


def current_trace_id() -> str:
    """The 32-hex id of the trace this code runs in, or "" outside any trace."""
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else ""


def span_annotate(attributes: Mapping[str, str | int | float | bool]) -> None:
    """Add attributes (e.g. `edge.mode`) to the current span, if it records."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes(dict(attributes))


def trace_carrier() -> dict[str, str]:
    """The current context as W3C headers, to store beside a message (outbox row)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def carrier_sampled(carrier: Mapping[str, str] | None) -> bool:
    """Does the stored context (trace_carrier) belong to a sampled trace? Its
    `traceparent`'s flags say: 00-<trace id>-<span id>-<flags>, bit 0 sampled."""
    parts = (carrier or {}).get("traceparent", "").strip().split("-")
    if len(parts) != 4:
        return False
    try:
        return bool(int(parts[3][:2], 16) & 1)
    except ValueError:
        return False


@contextmanager
def untraced() -> Iterator[None]:
    """Work that continues no trace and starts none (the relay's bundle of purchases
    whose traces are not sampled): its context is a span that is not sampled, so the
    spans below it and the messages it sends (their `traceparent` says "not
    sampled") are dropped here and in every process after, as a child of an unsampled
    purchase's span would be."""
    unsampled = trace.NonRecordingSpan(
        trace.SpanContext(
            trace_id=random.getrandbits(128) or 1,
            span_id=random.getrandbits(64) or 1,
            is_remote=False,
            trace_flags=trace.TraceFlags(trace.TraceFlags.DEFAULT),
        )
    )
    token = otel_context.attach(trace.set_span_in_context(unsampled))
    try:
        yield
    finally:
        otel_context.detach(token)


@contextmanager
def span_from_carrier(
    name: str,
    carrier: Mapping[str, str],
    *,
    link: bool = False,
    kind: trace.SpanKind = trace.SpanKind.INTERNAL,
    attributes: Mapping[str, str | int | float | bool] | None = None,
) -> Iterator[trace.Span]:
    """A span continuing the context stored in `carrier` (see trace_carrier).

    As a child by default, so the accept request and the work it queued are one
    trace; with `link=True`, a new trace whose span links back to the stored one.
    An empty or unreadable carrier starts a new trace.
    """
    stored = propagate.extract(dict(carrier))
    if link:
        linked = trace.get_current_span(stored).get_span_context()
        links = [trace.Link(linked)] if linked.is_valid else []
        with tracer_named(__name__).start_as_current_span(
            name,
            context=otel_context.Context(),
            kind=kind,
            links=links,
            attributes=dict(attributes or {}),
        ) as span:
            yield span
    else:
        with span_current(
            span_start(__name__, name, kind=kind, attributes=attributes, context=stored)
        ) as span:
            yield span


@contextmanager
def span_in_trace(
    name: str,
    *,
    kind: trace.SpanKind = trace.SpanKind.INTERNAL,
    attributes: Mapping[str, str | int | float | bool] | None = None,
) -> Iterator[trace.Span | None]:
    """A child of the current span, for work no instrumentation sees; outside a
    trace (a periodic board push that no request asked for) or in one the edge did
    not sample, nothing at all (the current context still carries the trace on)."""
    if not trace.get_current_span().is_recording():
        yield None
        return
    with span_current(
        span_start(__name__, name, kind=kind, attributes=attributes)
    ) as span:
        yield span


def span_start(
    scope: str,
    name: str,
    *,
    kind: trace.SpanKind = trace.SpanKind.INTERNAL,
    attributes: Mapping[str, AttributeValue] | None = None,
    context: otel_context.Context | None = None,
    start_time: int | None = None,
) -> trace.Span:
    """`tracer_named(scope).start_span(...)`, for the spans made by hand: a plain
    span where the services' sampler records it for sure, half the SDK's cost
    (common/tracing/plain_spans.py); the SDK's span everywhere else."""
    fields = dict(attributes) if attributes else {}  # the span's own, changed later
    span = plain_span(scope, name, kind, fields, context, start_time)
    if span is not None:
        return span
    return tracer_named(scope).start_span(
        name, context=context, kind=kind, attributes=fields, start_time=start_time
    )
