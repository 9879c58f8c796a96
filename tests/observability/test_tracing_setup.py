"""common/tracing/ in real processes: the environment it reads, what it writes.

Each case runs a fresh Python process (a tracer provider is set once per process),
which makes spans through the real SDK and exits; the spans are read back from the
files with the same reader the `traces` command uses.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from observability.store import FileSpanStore
from tests.support.processes import ROOT
from tests.support.tracing import traced_env

MAKE_SPANS = """
import os, sys
from opentelemetry import trace
from common.tracing.core import tracing_setup, current_trace_id
tracing_setup(sys.argv[1], edge_mode=(sys.argv[2] or None))
tracing_setup(sys.argv[1])  # idempotent: the second call changes nothing
tracer = trace.get_tracer("test")
with tracer.start_as_current_span("outer"):
    with tracer.start_as_current_span("inner"):
        print(current_trace_id())
"""


def _run(code: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result


def test_a_process_writes_its_spans_as_otlp_json_lines_in_a_file_of_its_own(tmp_path):
    # when a process sets up tracing as the warehouse and makes two spans
    result = _run(MAKE_SPANS, "warehouse", "", env=traced_env(tmp_path))
    assert result.returncode == 0, result.stderr
    trace_id = result.stdout.strip()
    # then one file, named for the service and the pid, holds them
    files = list(tmp_path.glob("warehouse-*.jsonl"))
    assert len(files) == 1
    assert files[0].stem.split("-")[-1].isdigit()
    lines = files[0].read_text().splitlines()
    document = json.loads(lines[0])
    # as OTLP/JSON: camelCase fields, hex ids, integer enums, string nanoseconds
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span["traceId"] == trace_id
    assert len(span["spanId"]) == 16
    assert int(span["spanId"], 16)
    assert span["kind"] == 1
    assert span["startTimeUnixNano"].isdigit()
    # and the reader gets them back, inner under outer
    spans = {s.name: s for s in FileSpanStore(tmp_path).spans()}
    assert spans["inner"].parent_id == spans["outer"].span_id
    assert spans["outer"].resource["service.name"] == "warehouse"
    assert spans["outer"].resource["deployment.environment"] == "demo"


def test_the_edge_mode_and_the_environment_name_the_resource(tmp_path):
    env = {
        **traced_env(tmp_path),
        "OTEL_SERVICE_NAME": "edge-canary",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=staging,team=fishing",
    }
    result = _run(MAKE_SPANS, "edge", "strangler", env=env)
    assert result.returncode == 0, result.stderr
    resource = next(FileSpanStore(tmp_path).spans()).resource
    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over the code's names
    assert resource["service.name"] == "edge-canary"
    assert resource["deployment.environment"] == "staging"
    assert resource["team"] == "fishing"
    assert resource["edge.mode"] == "strangler"


@pytest.mark.parametrize(
    "switch",
    [
        {"OTEL_SDK_DISABLED": "true"},
        {"OTEL_TRACES_EXPORTER": "none"},
        {"OTEL_TRACES_SAMPLER": "always_off"},
    ],
    ids=["sdk disabled", "no exporter", "sampler always off"],
)
def test_tracing_switched_off_writes_nothing(tmp_path, switch):
    result = _run(MAKE_SPANS, "shop", "", env={**traced_env(tmp_path), **switch})
    assert result.returncode == 0, result.stderr
    assert not list(tmp_path.glob("*.jsonl"))
    if "OTEL_SDK_DISABLED" in switch:
        assert result.stdout.strip() == ""  # no trace at all: no X-Trace-Id either


def test_an_unknown_service_name_is_refused(tmp_path):
    result = _run(MAKE_SPANS, "shopp", "", env=traced_env(tmp_path))
    assert result.returncode != 0
    assert "unknown service 'shopp'" in result.stderr


FORK_AFTER_SETUP = """
import os
from opentelemetry import trace
from common.tracing.core import tracing_setup
tracing_setup("fulfillment-worker")
tracer = trace.get_tracer("test")
with tracer.start_as_current_span("before fork"):
    pass
pid = os.fork()
with tracer.start_as_current_span("child" if pid == 0 else "parent"):
    pass
trace.get_tracer_provider().force_flush()
if pid == 0:
    os._exit(0)
os.waitpid(pid, 0)
"""


def test_a_process_forked_after_set_up_writes_its_own_file(tmp_path):
    # given a Celery-like worker that set up tracing and then forked a child
    result = _run(FORK_AFTER_SETUP, env=traced_env(tmp_path))
    assert result.returncode == 0, result.stderr
    # then parent and child each wrote their spans to a file of their own pid
    by_file = [
        {span.name for span in FileSpanStore.spans_in(path)}
        for path in tmp_path.glob("*.jsonl")
    ]
    assert sorted(by_file, key=len) == [{"child"}, {"before fork", "parent"}]


MANY_BATCHES = """
from opentelemetry import trace
from common.tracing.core import tracing_setup
tracing_setup("shop")
tracer = trace.get_tracer("test")
for batch in range(40):
    for n in range(25):
        with tracer.start_as_current_span(f"span {batch}/{n}"):
            pass
    trace.get_tracer_provider().force_flush()
"""


def test_several_processes_write_at_once_and_every_span_reads_back(tmp_path):
    # when four processes write 1000 spans each into the same directory at once
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(MANY_BATCHES)],
            cwd=ROOT,
            env={"PATH": "/usr/bin:/bin", **traced_env(tmp_path)},
        )
        for _ in range(4)
    ]
    assert [p.wait(60) for p in procs] == [0, 0, 0, 0]
    # then every line is whole and every span is there, once
    spans = list(FileSpanStore(tmp_path).spans())
    assert len(spans) == 4 * 1000
    assert len({(s.trace_id, s.span_id) for s in spans}) == 4000
    assert len(list(tmp_path.glob("shop-*.jsonl"))) == 4


THREADS_AT_ONCE = """
import threading
from opentelemetry import trace
from common.tracing.core import tracing_setup

# As an instrumentation does: its tracer is taken before any set-up.
tracer = trace.get_tracer("test")
start = threading.Barrier(16)

def first_task(n):
    start.wait()
    tracing_setup("orders-worker")
    with tracer.start_as_current_span(f"task {n}"):
        pass

threads = [threading.Thread(target=first_task, args=(n,)) for n in range(16)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
trace.get_tracer_provider().force_flush()
"""


def test_threads_that_set_up_at_once_all_record_their_first_span(tmp_path):
    # when sixteen threads of a worker start their first task at the same moment
    result = _run(THREADS_AT_ONCE, env=traced_env(tmp_path))
    assert result.returncode == 0, result.stderr
    # then the set-up was done once, before any of them made its span: all recorded
    names = {span.name for span in FileSpanStore(tmp_path).spans()}
    assert names == {f"task {n}" for n in range(16)}
    assert len(list(tmp_path.glob("orders-worker-*.jsonl"))) == 1


SAMPLED = """
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from common.tracing.core import tracing_setup
tracing_setup("outbox-relay")
tracer = trace.get_tracer("test")
with tracer.start_as_current_span("SELECT pending", kind=SpanKind.CLIENT):
    pass  # a poll: an outgoing call with no parent
with tracer.start_as_current_span("outbox publish"):
    with tracer.start_as_current_span("LPUSH", kind=SpanKind.CLIENT):
        pass
with tracer.start_as_current_span("GET /healthz", kind=SpanKind.SERVER):
    pass
trace.get_tracer_provider().force_flush()
"""


def test_a_bare_outgoing_call_starts_no_trace_but_is_kept_inside_one(tmp_path):
    # when a process polls (a client span, no parent), works, and serves a request
    result = _run(SAMPLED, env=traced_env(tmp_path))
    assert result.returncode == 0, result.stderr
    # then the poll made no trace; the work and its call, and the request, did
    spans = {span.name: span for span in FileSpanStore(tmp_path).spans()}
    assert set(spans) == {"outbox publish", "LPUSH", "GET /healthz"}
    assert spans["LPUSH"].parent_id == spans["outbox publish"].span_id


def test_a_sampler_named_in_the_environment_wins(tmp_path):
    env = {**traced_env(tmp_path), "OTEL_TRACES_SAMPLER": "parentbased_always_on"}
    result = _run(SAMPLED, env=env)
    assert result.returncode == 0, result.stderr
    names = {span.name for span in FileSpanStore(tmp_path).spans()}
    assert "SELECT pending" in names


MANY_ROOTS = """
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from common.tracing.core import tracing_setup
tracing_setup("orders-api")
tracer = trace.get_tracer("test")
for n in range(2000):
    with tracer.start_as_current_span(f"request {n}", kind=SpanKind.SERVER):
        with tracer.start_as_current_span("INSERT", kind=SpanKind.CLIENT):
            pass
    with tracer.start_as_current_span("poll", kind=SpanKind.CLIENT):
        pass
trace.get_tracer_provider().force_flush()
"""


def test_a_share_of_the_traces_whole_and_still_no_polls(tmp_path):
    # when a tenth of the traces is asked for
    env = {
        **traced_env(tmp_path),
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
    }
    result = _run(MANY_ROOTS, env=env)
    assert result.returncode == 0, result.stderr
    spans = list(FileSpanStore(tmp_path).spans())
    requests = [s for s in spans if s.name.startswith("request")]
    # then about a tenth of the requests are kept, each with its child
    assert 100 <= len(requests) <= 300
    assert sum(1 for s in spans if s.name == "INSERT") == len(requests)
    # and no poll at all
    assert not [s for s in spans if s.name == "poll"]


UNTRACED = """
import sys
from opentelemetry import trace
from common.tracing.core import trace_carrier, tracing_setup, untraced
tracing_setup("outbox-relay")
tracer = trace.get_tracer("test")
with untraced():
    with tracer.start_as_current_span("publish", kind=trace.SpanKind.PRODUCER):
        print(trace_carrier()["traceparent"])
with tracer.start_as_current_span("outbox publish"):
    pass
"""


def test_untraced_work_makes_no_span_and_tells_the_next_process_so(tmp_path):
    # when the relay publishes a bundle untraced, then does traced work
    result = _run(UNTRACED, env=traced_env(tmp_path))
    assert result.returncode == 0, result.stderr
    # then the message's context says "not sampled" (the worker makes no span)
    assert result.stdout.strip().endswith("-00")
    # and only the traced work wrote a span
    assert [span.name for span in FileSpanStore(tmp_path).spans()] == ["outbox publish"]


PUBLISHED = """
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from common.tracing.core import message_publishing, tracing_setup
tracing_setup("outbox-relay")
tracer = trace.get_tracer("test")
celery = trace.get_tracer("opentelemetry.instrumentation.celery")
with tracer.start_as_current_span("outbox publish"):
    with celery.start_as_current_span("apply_async/t", kind=SpanKind.PRODUCER):
        with tracer.start_as_current_span("LPUSH", kind=SpanKind.CLIENT) as push:
            assert push.get_span_context().trace_id != 0
    with tracer.start_as_current_span("orders.push", kind=SpanKind.PRODUCER):
        with tracer.start_as_current_span("PUBLISH", kind=SpanKind.CLIENT):
            pass
with tracer.start_as_current_span("events publish"):
    with message_publishing():  # a task sent by name: no producer span around it
        # the instrumentations call straight through (no span for the sampler to drop)
        assert not is_instrumentation_enabled()
        with tracer.start_as_current_span("LPUSH by name", kind=SpanKind.CLIENT):
            pass
    assert is_instrumentation_enabled()
    with tracer.start_as_current_span("GET after", kind=SpanKind.CLIENT):
        pass
trace.get_tracer_provider().force_flush()
"""


def test_a_call_inside_a_message_publish_is_not_recorded_but_the_rest_is(tmp_path):
    # when a process publishes a Celery message (Redis LPUSH inside it) and pushes
    # to a websocket group (Redis PUBLISH inside a producer span of its own)
    result = _run(PUBLISHED, env=traced_env(tmp_path))
    assert result.returncode == 0, result.stderr
    # then the publish is recorded, the LPUSH inside it not, nor the one of a
    # message sent by name; a producer span of our own keeps its call, and a call
    # after the publish is recorded
    spans = {span.name: span for span in FileSpanStore(tmp_path).spans()}
    assert set(spans) == {
        "outbox publish",
        "apply_async/t",
        "orders.push",
        "PUBLISH",
        "events publish",
        "GET after",
    }
    assert spans["apply_async/t"].parent_id == spans["outbox publish"].span_id
    assert spans["PUBLISH"].parent_id == spans["orders.push"].span_id


BUNDLE = """
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from common.tracing import bundled_trace, carrier_context, trace_carrier
from common.tracing.core import tracing_setup
tracing_setup("fulfillment-worker")
tracer = trace.get_tracer("test")
other = {"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"}
unsampled = {"traceparent": "00-" + "c" * 32 + "-" + "d" * 16 + "-00"}
with tracer.start_as_current_span("run/message", kind=SpanKind.CONSUMER):
    with carrier_context(other):
        tracer.start_span("apply_async/retry", kind=SpanKind.PRODUCER).end()
    own = trace_carrier()
    for name, carrier in (("other", other), ("unsampled", unsampled),
                          ("own", own), ("none", None)):
        with bundled_trace("run/item", carrier) as made:
            print(name, made)
            tracer.start_span(f"POST {name}", kind=SpanKind.CLIENT).end()
trace.get_tracer_provider().force_flush()
"""


def test_each_item_of_a_bundle_is_done_in_the_trace_its_envelope_names(tmp_path):
    # when a consumer does the items of one message, each with the context stored
    # beside it: another sampled trace, an unsampled one, the message's, none
    said = _ran(BUNDLE, tmp_path).split()
    assert said == [
        *("other", "True", "unsampled", "False"),
        *("own", "False", "none", "False"),
    ]
    spans = {span.name: span for span in FileSpanStore(tmp_path).spans()}
    message = spans["run/message"]
    # then the item of another sampled trace has a consumer span continuing it,
    # its call under that span
    item = spans["run/item"]
    assert (item.trace_id, item.parent_id, item.kind) == (
        "a" * 32,
        "b" * 16,
        "consumer",
    )
    assert spans["POST other"].parent_id == item.span_id
    # and the unsampled item's call is recorded nowhere
    assert "POST unsampled" not in spans
    # and the message's own item, and one with no context, stay in the message's
    for name in ("POST own", "POST none"):
        assert spans[name].parent_id == message.span_id
    # and a message sent again for one item goes on in that item's trace
    retry = spans["apply_async/retry"]
    assert (retry.trace_id, retry.parent_id) == ("a" * 32, "b" * 16)


def _ran(script: str, tmp_path) -> str:
    """What a traced script printed; it must have succeeded."""
    result = _run(script, env=traced_env(tmp_path))
    assert result.returncode == 0, result.stderr
    return result.stdout
