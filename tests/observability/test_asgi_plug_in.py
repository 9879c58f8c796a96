"""The ASGI plug-ins the edge and the orders service will call, in real processes.

Each case drives a real ASGI application through the call the service will make
(`instrument_asgi_app`, `traced_django_asgi_application`) with an HTTP request that
carries a traceparent, then reads the spans back from the process's file.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from common.stack_secrets import secrets_for_processes
from observability.store import FileSpanStore
from tests.support.processes import ROOT
from tests.support.tracing import traced_env

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"

DRIVE = """
import asyncio, json, sys, urllib.parse

async def drive(app, path):
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": "GET", "scheme": "http", "path": path,
        "raw_path": urllib.parse.quote(path).encode(),
        "query_string": b"", "root_path": "", "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"traceparent", b"00-TRACE-PARENT-01"),
        ],
    }
    sent, requested, done = [], [], asyncio.Event()
    async def receive():
        if not requested:  # the body once, then the client waits until the answer
            requested.append(True)
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}
    async def send(message):
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    print(json.dumps({"status": start["status"], "headers": headers}))
""".replace("TRACE", TRACE).replace("PARENT", PARENT)

EDGE = (
    DRIVE
    + """
from opentelemetry import trace
from common.tracing.asgi import instrument_asgi_app
from common.tracing.core import span_annotate

async def edge(scope, receive, send):
    if scope["type"] != "http":
        return
    span_annotate({"edge.mode": "strangler", "edge.route": "muskie"})
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})

app = instrument_asgi_app(edge, "edge", edge_mode="legacy")
asyncio.run(drive(app, "/shop/rods/muskie-casting-rod/"))
trace.get_tracer_provider().force_flush()
"""
)

DJANGO = (
    DRIVE
    + """
import os
os.environ["DJANGO_SETTINGS_MODULE"] = "orders_api.settings"
from opentelemetry import trace
from orders_api.asgi import traced_django_asgi_application

app = traced_django_asgi_application("orders-api")
asyncio.run(drive(app, sys.argv[1] if len(sys.argv) > 1 else "/nowhere"))
trace.get_tracer_provider().force_flush()
"""
)


def _run(code: str, env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=ROOT,
        # The stack's secrets: the orders settings refuse to load without them.
        env={"PATH": "/usr/bin:/bin", **secrets_for_processes(), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_edge_plug_in_makes_a_server_span_in_the_callers_trace(tmp_path):
    # when an ASGI app wrapped as the edge serves a request with a traceparent
    _run(EDGE, traced_env(tmp_path))
    # then its server span continues that trace, named for the edge and its mode
    span = next(s for s in FileSpanStore(tmp_path).spans() if s.kind == "server")
    assert span.trace_id == TRACE
    assert span.parent_id == PARENT
    assert span.service == "edge"
    assert span.resource["edge.mode"] == "legacy"
    # and the mode of this very request, set at run time, is on the span
    assert span.attributes["edge.mode"] == "strangler"
    assert span.attributes["edge.route"] == "muskie"
    assert span.http_target == "/shop/rods/muskie-casting-rod/"


def test_the_django_asgi_plug_in_traces_the_request_and_names_the_trace(tmp_path):
    # when a Django project served over ASGI gets a request with a traceparent
    output = _run(DJANGO, traced_env(tmp_path))
    # then the answer names the caller's trace
    assert f'"x-trace-id": "{TRACE}"' in output
    # and the Django server span is in it, named for the service
    span = next(s for s in FileSpanStore(tmp_path).spans() if s.kind == "server")
    assert (span.trace_id, span.parent_id) == (TRACE, PARENT)
    assert span.service == "orders-api"
    assert span.scope == "common.tracing.django"
    assert span.http_status == 404


def test_a_path_outside_latin_1_is_a_404_not_a_server_error(tmp_path):
    # when the traced Django app gets a path with a character beyond latin-1
    # (a fuzzer's `%F1%97%AB%AE`; the WSGI instrumentation once raised on it)
    output = _run(DJANGO, traced_env(tmp_path), "/api/sales/\U00057aee/")
    # then it is an ordinary "not found", traced as one
    assert '"status": 404' in output
    span = next(s for s in FileSpanStore(tmp_path).spans() if s.kind == "server")
    assert span.http_status == 404
    assert span.trace_id == TRACE
