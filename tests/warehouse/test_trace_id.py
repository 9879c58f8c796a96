"""The warehouse names the trace of every answer it gives (X-Trace-Id)."""

from __future__ import annotations

import re
import secrets

import pytest

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


def test_an_answer_continues_the_callers_trace(warehouse):
    # given a caller in a trace of its own
    trace_id = secrets.token_hex(16)
    traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    with warehouse.client() as client:
        # when it asks the warehouse for its stats
        answer = client.get("/stats/", headers={"traceparent": traceparent})
    # then the answer is part of that trace
    assert answer.status_code == 200
    assert answer.headers["X-Trace-Id"] == trace_id


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/stats/", 200), ("GET", "/nowhere", 404), ("PUT", "/fulfilments/", 405)],
)
def test_every_answer_starts_a_trace_without_a_traceparent(
    warehouse, method, path, status
):
    with warehouse.client() as client:
        answer = client.request(method, path)
    assert answer.status_code == status
    assert TRACE_ID.match(answer.headers["X-Trace-Id"])


def test_health_checks_are_not_traced(warehouse):
    # /healthz is polled every few seconds: tracing it would bury the purchases
    with warehouse.client() as client:
        answer = client.get("/healthz")
    assert answer.status_code == 200
    assert "X-Trace-Id" not in answer.headers
