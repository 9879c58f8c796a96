"""Health probes, metrics scrapes, static files and the paths an operator names in
OTEL_PYTHON_EXCLUDED_URLS leave no span, on every service and at the edge.

Each request carries a traceparent of its own: a span of any process in that trace
would be the request's. A traced request sent after them on the same connection
(one worker, whose spans are written in order) says when to look.
"""

from __future__ import annotations

import httpx
import pytest

from observability.purchase import Traceparent
from observability.store import FileSpanStore, trace_wait
from tests.support.edge import Process
from tests.support.orders_stack import OrdersStack
from tests.support.tracing import EXCLUDED_BY_CONFIG

pytestmark = pytest.mark.stack

PROBES = ["/healthz", "/readyz", "/metrics", "/favicon.ico", EXCLUDED_BY_CONFIG]
STATIC = {
    "shop": "/static/shop/img/logo.svg",
    "orders": "/static/orders/img/logo.svg",
    "warehouse": "/static/warehouse.css",
}
# Traced, answered by every service (a 404 is a request like any other).
TRACED = "/traced-after-the-quiet-ones/"


def _quiet_traces(
    base_url: str, paths: list[str], store: FileSpanStore, *, services: set[str]
) -> list[str]:
    """The spans made for `paths`, requested at `base_url` each in a trace of its
    own, once `services` have written a traced request sent after them."""
    quiet = {path: Traceparent.new() for path in paths}
    later = Traceparent.new()
    with httpx.Client(base_url=base_url, timeout=10) as client:
        for path, sent in quiet.items():
            client.get(path, headers={"traceparent": sent.header})
        traced = client.get(TRACED, headers={"traceparent": later.header})
        assert traced.status_code == 404
    trace_wait(
        store, later.trace_id, complete=lambda trace: services <= set(trace.services)
    )
    ids = {sent.trace_id for sent in quiet.values()}
    return [
        f"{span.label} {span.http_target}"
        for span in store.spans(mentioning=frozenset(ids))
        if span.trace_id in ids
    ]


@pytest.mark.parametrize("service", ["shop", "orders", "warehouse"])
def test_probes_metrics_and_static_files_of_a_service_leave_no_span(
    stack: OrdersStack, store: FileSpanStore, service: str
) -> None:
    # given a service of the traced stack, OTEL_PYTHON_EXCLUDED_URLS set
    base_url, name = {
        "shop": (stack.shop.url, "shop"),
        "orders": (stack.orders.url, "orders-api"),
        "warehouse": (stack.warehouse_url, "warehouse"),
    }[service]
    # when its health probes, metrics, favicon, a static file and the path the
    # operator excluded are requested
    made = _quiet_traces(base_url, [*PROBES, STATIC[service]], store, services={name})
    # then none of them made a span
    assert made == []


def test_at_the_edge_probes_static_files_and_excluded_paths_leave_no_span(
    edge: Process, store: FileSpanStore
) -> None:
    # given the traced edge in front of the shop, OTEL_PYTHON_EXCLUDED_URLS naming a
    # path; when its own endpoints, the origins' probes, a static file and that
    # path are requested through it
    paths = ["/_edge/healthz", "/_edge/metrics", *PROBES, STATIC["shop"]]
    made = _quiet_traces(edge.url, paths, store, services={"edge", "shop"})
    # then neither the edge nor the origin behind it made a span for them
    assert made == []
