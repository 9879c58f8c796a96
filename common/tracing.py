"""OpenTelemetry for every process of the stack: one call per process, official parts.

Which call each process makes (each is idempotent and a no-op with tracing off):

- shop, warehouse (Django WSGI), in wsgi.py:
  `application = traced_wsgi_application("shop")`
- orders-api (Django ASGI), in asgi.py, instead of get_asgi_application():
  `traced_django_asgi_application("orders-api")`; a channels websocket app is
  wrapped with `instrument_asgi_app(app, "orders-api")`
- edge (ASGI, no Django): `app = instrument_asgi_app(app, "edge", edge_mode=mode)`
  and `instrument_aiohttp_client()` for its aiohttp client (`instrument_clients()`
  would trace its Redis mode polls too); `span_annotate({"edge.mode": mode})` per
  request, as the mode can change at run time
- fulfillment-worker, orders-worker, where the Celery app is built:
  `instrument_celery_worker("fulfillment-worker")`
- outbox-relay (and commands): `instrument_process("outbox-relay")` at start; the
  relay publishes inside `span_from_carrier(name, carrier)`, with the carrier that
  `trace_carrier()` gave the accept request, stored in the outbox row
- work done for the current trace that no instrumentation sees (a channels push):
  `span_in_trace(name)`, which makes nothing outside a trace

A trace starts where something comes in (a request, a message) or where our code
names the work; a bare outgoing call with no parent (a worker polling its broker, the
relay's housekeeping queries every half second) starts none: the default sampler
(and `parentbased_traceidratio`) drops such root client spans, so the store holds
purchases, not polls.

Configuration is the standard `OTEL_*` environment: `OTEL_SDK_DISABLED=true` turns it
all off (nothing is patched), `OTEL_SERVICE_NAME` overrides the name, the SDK reads
`OTEL_TRACES_SAMPLER`/`OTEL_BSP_*`/`OTEL_RESOURCE_ATTRIBUTES` itself, and
`OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT` sends spans over OTLP http/protobuf (Jaeger in
docker compose). Without an endpoint, spans go to the local span store: OTLP/JSON lines
under `TRACES_DIR` (default `.data/traces/`, see common/otlp_files.py).

This module imports no Django at module level: the edge imports it too.
"""

from __future__ import annotations

import logging
import os
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
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)

from common.otlp_files import JsonLinesSpanExporter

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
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
# Health checks every few seconds and static files would bury the purchases.
DEFAULT_EXCLUDED_URLS = "/healthz$,/static/"
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


def _sampler() -> Sampler | None:
    """Ours, by default and for `parentbased_traceidratio` (a share of the traces, as
    for a sale at full tilt); any other OTEL_TRACES_SAMPLER the SDK reads itself."""
    name = os.environ.get("OTEL_TRACES_SAMPLER", "").strip().lower()
    if not name:
        return ParentBased(root=NoBareClientRoots())
    if name == "parentbased_traceidratio":
        try:
            ratio = float(os.environ.get("OTEL_TRACES_SAMPLER_ARG", "1.0"))
        except ValueError:
            ratio = 1.0
        ratio = ratio if 0.0 <= ratio <= 1.0 else 1.0
        return ParentBased(root=NoBareClientRoots(TraceIdRatioBased(ratio)))
    return None


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
                resource=_resource(service_name, edge_mode), sampler=_sampler()
            )
            exporter, delay = _exporter(service_name)
            if exporter is not None:
                provider.add_span_processor(
                    BatchSpanProcessor(exporter, schedule_delay_millis=delay)
                )
            trace.set_tracer_provider(provider)
            logger.debug("tracing set up for %s (pid %s)", service_name, pid)
        _setup_pid = pid


# --- official instrumentations: patches only, safe before a fork --------------------


def _excluded_urls() -> str | None:
    if os.environ.get("OTEL_PYTHON_EXCLUDED_URLS") or os.environ.get(
        "OTEL_PYTHON_DJANGO_EXCLUDED_URLS"
    ):
        return None  # the instrumentation reads them itself
    return DEFAULT_EXCLUDED_URLS


def _instrument(instrumentor: Any, **kwargs: Any) -> None:
    if tracing_enabled() and not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(**kwargs)


def instrument_django() -> None:
    """Server spans for Django views. Call before get_wsgi/asgi_application()."""
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    _instrument(DjangoInstrumentor(), excluded_urls=_excluded_urls())


def instrument_clients() -> None:
    """Client spans for PostgreSQL (psycopg), Redis, httpx and aiohttp."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    _instrument(PsycopgInstrumentor())
    _instrument(RedisInstrumentor())
    _instrument(HTTPXClientInstrumentor())
    try:
        import aiohttp  # noqa: F401 - only the edge has it
    except ImportError:
        return
    instrument_aiohttp_client()


def instrument_aiohttp_client() -> None:
    """Client spans for aiohttp, their context sent on in `traceparent`.

    Sessions made after this call are traced (the instrumentation adds its trace
    config when a ClientSession is built).
    """
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor

    _instrument(AioHttpClientInstrumentor())


def instrument_celery() -> None:
    """Producer spans on publish and consumer spans on run, linked by the message."""
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    _instrument(CeleryInstrumentor())


# --- one call per process ------------------------------------------------------------


def traced_wsgi_application(service_name: str) -> WSGIApp:
    """Django's WSGI application, instrumented, for a service's wsgi.py.

    Patching happens here, at import, which is safe even in a gunicorn master that
    preloads the app: it starts no thread and opens no file or socket. The provider
    and exporter are set up at the first request of each worker instead: with
    `--preload` the master imports this module once and forks, and a batch thread or
    an exporter connection made before the fork would be shared or lost. Without
    `--preload` each worker imports this module itself; the first request is still
    the right place, and gunicorn needs no config hook that only it would call.
    """
    from django.core.wsgi import get_wsgi_application

    instrument_django()
    instrument_clients()
    django_app = get_wsgi_application()
    if not tracing_enabled():
        return django_app

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        tracing_setup(service_name)
        return django_app(environ, start_response)

    return application


def traced_django_asgi_application(service_name: str, *, threads: int = 16) -> ASGIApp:
    """Django for an ASGI server: its WSGI handler, instrumented, on `threads` threads.

    Django's own ASGIHandler runs a sync view behind sync middleware (Django's are)
    with a thread hop per middleware method, on a thread made afresh per request
    (asgiref's ThreadSensitiveContext). On the orders accept that was half the
    service's CPU (`python -m bench.orders`: 8.4 -> 4.0 ms per order). a2wsgi runs
    the whole request on one thread of a fixed pool instead; requests beyond
    `threads` wait on the event loop, which also bounds database connections.
    Websockets stay native ASGI (channels) beside it.
    """
    from a2wsgi import WSGIMiddleware

    instrument_celery()
    django_app = traced_wsgi_application(service_name)

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        # The request target as sent, as gunicorn gives it (a2wsgi does not). Without
        # it the WSGI instrumentation rebuilds the URL from PATH_INFO, which Django has
        # replaced by its decoded text, and a path outside latin-1 raises
        # (opentelemetry-python-contrib#3237).
        scope = environ.get("asgi.scope")
        if scope is not None and "RAW_URI" not in environ:
            target = scope.get("raw_path") or scope["path"].encode()
            if scope.get("query_string"):
                target += b"?" + scope["query_string"]
            environ["RAW_URI"] = target.decode("latin1")
        return django_app(environ, start_response)

    return WSGIMiddleware(application, workers=threads)


def instrument_asgi_app(
    app: ASGIApp,
    service_name: str,
    *,
    edge_mode: str | None = None,
    event_spans: bool = True,
) -> ASGIApp:
    """Server spans around any ASGI app (the edge, channels websockets).

    `event_spans=False` leaves out the span the instrumentation makes for every
    ASGI receive and send (a proxy streaming a download would make one per chunk).
    """
    if not tracing_enabled():
        return app
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    traced = OpenTelemetryMiddleware(
        app,
        excluded_urls=_excluded_urls(),
        exclude_spans=None if event_spans else ["receive", "send"],
    )

    async def application(scope: Any, receive: Any, send: Any) -> None:
        tracing_setup(service_name, edge_mode=edge_mode)
        await traced(scope, receive, send)

    return application


def instrument_celery_worker(service_name: str) -> None:
    """Tracing for a Celery worker: call where the Celery app is built.

    Prefork children set up in `worker_process_init` (after the fork, see
    tracing_setup); solo and thread pools on their first `task_prerun`, a receiver
    connected before the instrumentation's own so the first task is traced too.
    """
    if not tracing_enabled():
        return
    from celery import signals

    def setup(**_: Any) -> None:
        tracing_setup(service_name)

    signals.worker_process_init.connect(setup, weak=False)
    signals.task_prerun.connect(setup, weak=False)
    instrument_clients()
    instrument_celery()


def instrument_process(service_name: str, *, edge_mode: str | None = None) -> None:
    """A plain process that does not fork (outbox relay, a command): all at once."""
    tracing_setup(service_name, edge_mode=edge_mode)
    instrument_clients()
    instrument_celery()


# --- the current trace ---------------------------------------------------------------


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
    tracer = trace.get_tracer(__name__)
    extra = dict(attributes or {})
    if link:
        linked = trace.get_current_span(stored).get_span_context()
        links = [trace.Link(linked)] if linked.is_valid else []
        with tracer.start_as_current_span(
            name,
            context=otel_context.Context(),
            kind=kind,
            links=links,
            attributes=extra,
        ) as span:
            yield span
    else:
        with tracer.start_as_current_span(
            name, context=stored, kind=kind, attributes=extra
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
    trace (a periodic board push that no request asked for) nothing at all."""
    if not trace.get_current_span().get_span_context().is_valid:
        yield None
        return
    tracer = trace.get_tracer(__name__)
    with tracer.start_as_current_span(
        name, kind=kind, attributes=dict(attributes or {})
    ) as span:
        yield span
