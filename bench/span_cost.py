"""What tracing costs in one process, without a stack: CPU time per span exported, and
per request at the edge, sampled and not.

    python -m bench.span_cost [--requests 3000]

- `export`: 64-span batches of a Django-like server span (14 attributes) and
  psycopg-like client spans (6 attributes, an SQL statement), made by the SDK and
  kept in memory, then cleaned (`span_redact`) and encoded as the local span store
  writes them (`otlp_json_line`): microseconds of CPU a span, best of 7.
- `edge sampled`: the edge's server span around its client span and the attributes
  a traced request gets (`EdgeTracing.traced`, `client_span`, `annotate`), spans
  exported to a temporary store; `edge unsampled`: the draw and the `traceparent`
  an unsampled request gets. Microseconds of CPU a request.

CPU time (`time.process_time`), so other work on the machine moves it less than a
wall clock would; a loaded machine still slows every figure alike, so compare
figures of one run (docs/guides/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Callable, MutableMapping
from typing import Any

SQL = 'INSERT INTO "orders_api_order" ("created_at", "sku") VALUES (%s, %s)'
DB_ATTRIBUTES: dict[str, str | int] = {
    "db.system": "postgresql",
    "db.name": "orders",
    "db.statement": SQL,
    "db.user": "orders",
    "net.peer.name": "127.0.0.1",
    "net.peer.port": 5432,
}
# Requests between flushes: their spans stay within the batch processor's queue (2,048
# spans), which would drop the rest, and their export, from the figure.
FLUSH_EVERY = 500
TRACEPARENT = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _spans() -> list[Any]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )
    from opentelemetry.trace import SpanKind

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench.span_cost")
    server = {f"http.attribute_{n}": f"value {n}" for n in range(14)}
    for _ in range(200):
        with tracer.start_as_current_span("POST api/orders/", attributes=server):
            for _ in range(3):
                with tracer.start_as_current_span(
                    "INSERT", kind=SpanKind.CLIENT, attributes=DB_ATTRIBUTES
                ):
                    pass
    return list(memory.get_finished_spans())


def export_us_per_span() -> float:
    from common.otlp_files import otlp_json_line
    from common.tracing.redaction import span_redact

    spans = _spans()
    best = float("inf")
    for _ in range(7):
        started = time.process_time()
        for start in range(0, len(spans), 64):
            otlp_json_line([span_redact(span) for span in spans[start : start + 64]])
        best = min(best, time.process_time() - started)
    return best / len(spans) * 1e6


def edge_us_per_request(requests: int) -> dict[str, float]:
    """Set up tracing as the edge does (spans to a temporary store) and time it."""
    os.environ["TRACES_DIR"] = tempfile.mkdtemp(prefix="bench-span-cost-")
    os.environ["OTEL_SDK_DISABLED"] = "false"
    from opentelemetry import trace

    from edge_router.tracing import EdgeTracing

    tracing = EdgeTracing()
    scope: dict[str, Any] = {
        "type": "http", "method": "GET", "path": "/shop/rods/tourney-casting-rod/",
        "scheme": "http", "http_version": "1.1", "client": ("127.0.0.1", 5555),
        "server": ("127.0.0.1", 8000), "query_string": b"",
        "headers": [(b"host", b"edge"), (b"traceparent", TRACEPARENT)],
    }  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    async def send(message: MutableMapping[str, Any]) -> None:
        return None

    async def inside(_receive: Any, answer: Any) -> None:
        tracing.annotate({"edge.mode": "legacy", "edge.route": "tourney-page"}, None)
        with tracing.client_span(
            "GET", "http://127.0.0.1:8001/shop/", "127.0.0.1", 8001, []
        ) as span:
            tracing.client_answered(span, 200)
        await answer({"type": "http.response.start", "status": 200})

    async def sampled() -> None:
        await tracing.traced(scope, receive, send, inside)

    async def unsampled() -> None:
        tracing.sampled(0.05)
        tracing.untraced_parent({b"traceparent": TRACEPARENT})

    async def timed(one: Callable[[], Any]) -> float:
        for _ in range(200):
            await one()
        provider: Any = trace.get_tracer_provider()
        started = time.process_time()
        for number in range(1, requests + 1):
            await one()
            if number % FLUSH_EVERY == 0:
                provider.force_flush()
        provider.force_flush()
        return (time.process_time() - started) / requests * 1e6

    async def both() -> dict[str, float]:
        return {
            "edge sampled": await timed(sampled),
            "edge unsampled": await timed(unsampled),
        }

    return asyncio.run(both())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args(argv)
    print(f"export (redaction + OTLP/JSON)  {export_us_per_span():7.1f} us CPU a span")
    for name, figure in edge_us_per_request(args.requests).items():
        print(f"{name:31}{figure:7.1f} us CPU a request")
    print("load average (1, 5, 15 min): " + ", ".join(
        f"{x:.2f}" for x in os.getloadavg()))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
