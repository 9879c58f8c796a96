"""The Celery plug-ins, through real Redis and a real worker process.

A publisher process (as the outbox relay will: `instrument_process`, then publish
inside `span_from_carrier`) sends a task for a legacy purchase's stored context; a
worker built like the fulfillment worker (`instrument_celery_worker`) runs it and
calls the real warehouse. The whole is ONE trace: producer and consumer joined by
the message, and the model counts the time in the queue as queue wait.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import textwrap

import pytest

from observability.model import Trace
from observability.store import trace_wait
from tests.observability.conftest import legacy_placed
from tests.support.processes import ROOT, process_env
from tests.support.tracing import traced_env

PUBLISH = """
import json, sys
from opentelemetry import trace
from common.tracing import instrument_process, span_from_carrier
from tests.observability.celery_standin import fulfil

instrument_process("outbox-relay")
carrier, order_ref, warehouse_url = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
with span_from_carrier("outbox publish", carrier):
    fulfil.delay(order_ref, warehouse_url)
trace.get_tracer_provider().force_flush()
"""


@pytest.fixture
def worker_env(traces_dir):
    queue = f"standin-{secrets.token_hex(4)}"
    return {
        **process_env(traced_env(traces_dir), "fulfillment_queue.warehouse.settings"),
        "STANDIN_QUEUE": queue,
    }


@pytest.fixture
def worker(worker_env):
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "tests.observability.celery_standin",
            "worker", "--pool", "solo", "-Q", worker_env["STANDIN_QUEUE"],
            "--without-heartbeat", "--without-gossip", "--without-mingle",
            "--loglevel", "WARNING",
        ],
        cwd=ROOT,
        env=worker_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    yield proc
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _consumer_done(trace: Trace) -> bool:
    warehouse = [
        s for s in trace.spans if s.service == "warehouse" and s.kind == "server"
    ]
    return len(warehouse) == 2 and any(s.kind == "consumer" for s in trace.spans)


def test_a_task_published_for_a_purchase_runs_in_the_same_trace(
    shop, warehouse, store, worker, worker_env
):
    # given a purchase whose context the accept request stored with its message
    placed = legacy_placed(shop, store)
    root = next(
        s for s in placed.trace.spans if s.service == "shop" and s.kind == "server"
    )
    carrier = {"traceparent": f"00-{root.trace_id}-{root.span_id}-01"}
    # when the relay publishes the task and the worker runs it
    ref = f"CELERY-{root.span_id}"
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PUBLISH), json.dumps(carrier), ref,
         warehouse.url],
        cwd=ROOT, env=worker_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    trace = trace_wait(store, placed.purchase.trace_id, complete=_consumer_done)
    # then the producer and the consumer are in the purchase's trace, joined by the
    # message: the consumer is the producer's child, in another process
    producer = next(s for s in trace.spans if s.kind == "producer")
    consumer = next(s for s in trace.spans if s.kind == "consumer")
    relay = trace.parent_of(producer)
    assert relay is not None
    assert relay.name == "outbox publish"
    assert trace.parent_of(relay) == root
    assert (producer.service, consumer.service) == (
        "outbox-relay",
        "fulfillment-worker",
    )
    assert trace.parent_of(consumer) == producer
    assert trace.relation[consumer.span_id] == "parent"
    assert (
        consumer.resource["service.instance.id"]
        != producer.resource["service.instance.id"]
    )
    # and the worker's call to the warehouse, and the warehouse, are below it
    call = next(s for s in trace.children[consumer.span_id] if s.kind == "client")
    served = trace.children[call.span_id][0]
    assert (served.service, served.http_status) == ("warehouse", 201)
    # and the time between publish and run is queue wait on the critical path
    times = trace.segment_times()
    assert sum(times.values()) == trace.duration_ns
    waited = [p for p in trace.critical_path if p.waiting]
    assert times["queue"] == sum(p.duration_ns for p in waited) > 0
    assert times["queue"] >= max(0, consumer.start_ns - producer.end_ns)
    assert times["worker"] > 0
    assert trace.fulfilled_ns == served.end_ns - root.start_ns
