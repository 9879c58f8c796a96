"""The model's arithmetic on real captured spans, not invented numbers.

The legacy trace comes from a real purchase; the asynchronous tail of the strangler
path is checked on a real one in test_strangler_trace.py.
"""

from __future__ import annotations

from observability.model import Trace
from observability.service_map import service_map
from observability.spans import SEGMENT_LABELS, Span


def _shop_root(trace: Trace) -> Span:
    return next(s for s in trace.spans if s.service == "shop" and s.kind == "server")


def _warehouse_call(trace: Trace) -> Span:
    return next(s for s in trace.spans if s.scope.endswith("httpx"))


def test_the_segments_add_up_to_the_legacy_trace_and_split_it_by_who_worked(legacy):
    trace = legacy.trace
    root = _shop_root(trace)
    call = _warehouse_call(trace)
    shop_children = trace.children[root.span_id]
    times = trace.segment_times()
    # the segments are the whole trace, nothing lost, nothing counted twice
    assert sum(times.values()) == trace.duration_ns == root.duration_ns
    # and the purchase was complete when the shop answered
    assert trace.completion is None
    assert trace.completed_ns == trace.duration_ns
    # the shop was blocked for the whole call: all of it is warehouse wait
    assert times["warehouse"] == call.duration_ns
    # its own queries and cache calls, one after the other, all on the path
    assert times["db"] == sum(
        s.duration_ns for s in shop_children if s.db_system == "postgresql"
    )
    assert times["redis"] == sum(
        s.duration_ns for s in shop_children if s.db_system == "redis"
    )
    # and the rest is the view's own time
    assert times["view"] == root.duration_ns - sum(s.duration_ns for s in shop_children)
    assert times["outbox"] == times["queue"] == times["worker"] == times["edge"] == 0
    assert set(times) == set(SEGMENT_LABELS)


def test_customer_latency_and_fulfilment_of_a_legacy_purchase(legacy):
    trace = legacy.trace
    root = _shop_root(trace)
    served = next(
        s for s in trace.spans if s.service == "warehouse" and s.kind == "server"
    )
    # the customer waited for the whole request
    assert trace.customer_latency_ns == root.duration_ns
    # and the warehouse had fulfilled before the answer: legacy is synchronous
    assert trace.fulfilled_ns == served.end_ns - root.start_ns
    assert trace.fulfilled_ns <= trace.customer_latency_ns


def test_busy_time_per_service_adds_up_to_the_request(legacy):
    trace = legacy.trace
    served = next(
        s for s in trace.spans if s.service == "warehouse" and s.kind == "server"
    )
    busy = trace.service_times()
    assert busy["warehouse"] == served.duration_ns
    assert busy["shop"] == _shop_root(trace).duration_ns - served.duration_ns
    assert sum(trace.critical_path_by_service().values()) == trace.duration_ns


def test_the_service_map_of_a_legacy_purchase(legacy):
    graph = service_map(legacy.trace)
    edges = {(e.source, e.target): e for e in graph.edges}
    call = _warehouse_call(legacy.trace)
    # client → shop → warehouse, with the shop's and the warehouse's databases
    assert ("client", "shop") in edges
    assert edges["shop", "warehouse"].count == 1
    assert edges["shop", "warehouse"].mean_ns == call.duration_ns
    assert graph.nodes["Redis"] == "cache"
    databases = [n for n, kind in graph.nodes.items() if kind == "database"]
    assert len(databases) == 2
    assert all(not e.asynchronous for e in graph.edges)


def test_a_trace_without_an_edge_span_is_reported_as_starting_at_the_origin(legacy):
    from dataclasses import replace

    from observability.report import Compared, render_html

    # given a real purchase straight at the shop (as through the nginx engine, which
    # starts no trace), and the same purchase with its root served by an edge
    straight = legacy.trace
    root = _shop_root(straight)
    through_edge = Trace(
        straight.trace_id,
        [replace(s, service="edge") if s is root else s for s in straight.spans],
    )
    # when each is reported
    pages = {
        name: render_html([Compared(name, trace)])
        for name, trace in [("straight", straight), ("edge", through_edge)]
    }
    # then only the one without an edge span says the trace starts at the origin
    assert "the trace starts at the origin" in pages["straight"]
    assert "the trace starts at the origin" not in pages["edge"]
