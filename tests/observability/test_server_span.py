"""The Django services' server span, made by hand (common/tracing/server_span.py), in
a real orders-service process: what a sampled request's span says, and that a
request the edge did not sample makes no span but still names its trace."""

from __future__ import annotations

from observability.store import FileSpanStore
from tests.observability.test_asgi_plug_in import DJANGO, PARENT, TRACE, _run
from tests.support.tracing import traced_env

UNSAMPLED = DJANGO.replace(f"{PARENT}-01", f"{PARENT}-00")


def test_a_sampled_request_is_one_server_span_named_for_its_route(tmp_path):
    # when the orders service answers a GET on its order route (405: POST only)
    output = _run(DJANGO, traced_env(tmp_path), "/api/orders/")
    assert '"status": 405' in output
    # then its one span is the server span, in the caller's trace, named for the
    # route Django resolved, with the attributes the trace readers use
    (span,) = FileSpanStore(tmp_path).spans()
    assert (span.trace_id, span.parent_id) == (TRACE, PARENT)
    assert (span.kind, span.scope) == ("server", "common.tracing.django")
    assert span.name == "GET api/orders/"
    assert (span.http_method, span.http_target, span.http_status) == (
        "GET",
        "/api/orders/",
        405,
    )
    assert span.attributes["http.route"] == "api/orders/"
    # and the response header the environment asks to capture (tests/support)
    assert span.attributes["http.response.header.content_type"] == ["application/json"]
    assert span.status == "unset"


def test_a_request_the_edge_did_not_sample_makes_no_span_and_names_its_trace(
    tmp_path,
):
    # when the request's traceparent says "not sampled"
    output = _run(UNSAMPLED, traced_env(tmp_path), "/api/orders/")
    # then the answer still names the edge's trace
    assert f'"x-trace-id": "{TRACE}"' in output
    # and no span was written at all
    assert list(FileSpanStore(tmp_path).spans()) == []
