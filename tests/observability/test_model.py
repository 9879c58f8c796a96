"""The model's arithmetic on real captured spans, not invented numbers.

The legacy trace comes from a real purchase. The asynchronous tail comes from a real
process too: the relay stand-in continues the purchase's stored context, as the
outbox relay will, and has the real warehouse fulfil an order (a child of the
purchase, or a new trace linked to it).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from observability.model import SEGMENT_LABELS, Span, Trace
from observability.service_map import service_map
from observability.store import trace_wait
from tests.observability.conftest import legacy_placed
from tests.support.processes import ROOT, process_env
from tests.support.tracing import traced_env


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
    assert times["queue"] == times["worker"] == times["edge"] == 0
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


def _relay(
    traces_dir, warehouse, carrier: dict[str, str], ref: str, *flags: str
) -> None:
    result = subprocess.run(
        [
            sys.executable, "-m", "tests.observability.relay_standin",
            json.dumps(carrier), warehouse.url, ref, *flags,
        ],
        cwd=ROOT,
        env=process_env(traced_env(traces_dir), "fulfillment_queue.warehouse.settings"),
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("link", [False, True], ids=["child", "link"])
def test_work_queued_after_the_answer_is_queue_wait_then_worker_then_warehouse(
    shop, warehouse, store, traces_dir, link
):
    # given a purchase whose context was stored beside a message
    placed = legacy_placed(shop, store)
    root = _shop_root(placed.trace)
    carrier = {"traceparent": f"00-{root.trace_id}-{root.span_id}-01"}
    # when a relay process picks it up later and has the warehouse fulfil it
    ref = f"RELAY-{root.span_id}-{int(link)}"
    _relay(traces_dir, warehouse, carrier, ref, *(["--link"] if link else []))
    trace = trace_wait(
        store,
        placed.purchase.trace_id,
        complete=lambda t: (
            any(s.service == "outbox-relay" for s in t.spans)
            and len(
                [s for s in t.spans if s.service == "warehouse" and s.kind == "server"]
            )
            == 2
        ),
    )
    relay = next(s for s in trace.spans if s.service == "outbox-relay")
    # then the relay's span hangs from the purchase: as its child, or by a link
    assert trace.parent_of(relay) == root
    assert trace.relation[relay.span_id] == ("link" if link else "parent")
    assert (relay.trace_id != root.trace_id) is link
    # and the time after the answer shows as queue wait, then worker and warehouse
    times = trace.segment_times()
    assert sum(times.values()) == trace.duration_ns
    assert times["queue"] == relay.start_ns - root.end_ns
    relay_call = trace.children[relay.span_id][0]
    assert times["warehouse"] == _warehouse_call(placed.trace).duration_ns + (
        relay_call.duration_ns
    )
    assert times["worker"] == relay.duration_ns - relay_call.duration_ns
    # the customer still waited only for the first request; fulfilment came later
    assert trace.customer_latency_ns == root.duration_ns
    served = trace.children[relay_call.span_id][0]
    assert served.service == "warehouse"
    assert trace.fulfilled_ns == served.end_ns - root.start_ns
    assert trace.fulfilled_ns > trace.customer_latency_ns
    # and the map draws the hand-over to the relay as asynchronous
    edge = next(e for e in service_map(trace).edges if e.target == "outbox-relay")
    assert edge.source == "shop"
    assert edge.asynchronous
