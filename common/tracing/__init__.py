"""OpenTelemetry for every process of the stack: one call per process, official parts.

Which call each process makes (each is idempotent and a no-op with tracing off):

- shop, warehouse (Django WSGI), in wsgi.py:
  `application = traced_wsgi_application("shop")`
- orders-api (Django ASGI): its serving model (orders_api/asgi.py) runs
  `traced_wsgi_application("orders-api")` on a thread pool; a channels websocket
  app is wrapped with `instrument_asgi_app(app, "orders-api")`
- edge (ASGI, no Django): a server span and one client span per request it chose
  to trace, made by hand (edge_router/tracing.py: the route table's ratio decides,
  the services behind follow its `traceparent`; the ASGI instrumentation cost a
  traced request ten times an untraced one, the aiohttp one hooks every request of
  its session, and `instrument_clients()` would trace its Redis mode polls too);
  `span_annotate({"edge.mode": mode})` per traced request,
  as the mode can change at run time
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

The modules: `core` (no Django, no Celery: provider, exporter, the current trace and
its carriers), `sampling` (the services' samplers), `bundles` (one message carrying
several traces), and the adapters `django` (WSGI), `celery` (workers, the relay)
and `asgi` (the edge, websockets). None imports Django or Celery at module level;
the edge imports `core` (with `sampling`) and `asgi` only. This package re-exports
their public names.
"""

from __future__ import annotations

from common.tracing.asgi import instrument_asgi_app
from common.tracing.bundles import bundled_trace, carrier_context
from common.tracing.celery import (
    instrument_celery,
    instrument_celery_worker,
    instrument_process,
)
from common.tracing.core import (
    NoBareClientRoots,
    carrier_sampled,
    current_trace_id,
    instrument_aiohttp_client,
    instrument_clients,
    message_publishing,
    span_annotate,
    span_from_carrier,
    span_in_trace,
    trace_carrier,
    traces_dir,
    tracing_enabled,
    tracing_setup,
    untraced,
)
from common.tracing.django import instrument_django, traced_wsgi_application

__all__ = [
    "NoBareClientRoots",
    "bundled_trace",
    "carrier_context",
    "carrier_sampled",
    "current_trace_id",
    "instrument_aiohttp_client",
    "instrument_asgi_app",
    "instrument_celery",
    "instrument_celery_worker",
    "instrument_clients",
    "instrument_django",
    "instrument_process",
    "message_publishing",
    "span_annotate",
    "span_from_carrier",
    "span_in_trace",
    "trace_carrier",
    "traced_wsgi_application",
    "traces_dir",
    "tracing_enabled",
    "tracing_setup",
    "untraced",
]
