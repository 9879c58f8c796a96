"""The shop's traces as a visitor meets them: X-Trace-Id, the confirmation, bad headers.

Against the real shop and warehouse under gunicorn, writing their spans to a
directory of this module's own. A malformed or hostile `traceparent` starts a new
trace and a bad `tracestate` is dropped; neither ever costs the visitor the request.
"""

from __future__ import annotations

import re
import secrets
import time

import httpx
import pytest

from observability.spans import Span
from tests.support.stack import shop_process, warehouse_process
from tests.support.tracing import span_store, traced_env

MUSKIE = "/shop/rods/muskie-casting-rod/"
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
SENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SENT_PARENT = "00f067aa0ba902b7"
VALID = f"00-{SENT_TRACE}-{SENT_PARENT}-01"


@pytest.fixture(scope="module")
def traces_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("shop-traces")


@pytest.fixture(scope="module")
def shop(traces_dir):
    env = traced_env(traces_dir)
    with (
        warehouse_process("test_shop_traces_wh", env=env) as warehouse,
        shop_process("test_shop_traces", warehouse_url=warehouse.url, env=env) as shop,
    ):
        yield shop


def _buy(client: httpx.Client, shop_url: str, headers: dict) -> httpx.Response:
    page = client.get(MUSKIE)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, "the product page has the buy-now form"
    return client.post(
        MUSKIE + "buy/",
        data={
            "csrfmiddlewaretoken": token[1],
            "quantity": "1",
            "email": "t@example.com",
        },
        headers={"Referer": shop_url + MUSKIE, **headers},
    )


def _server_span(traces_dir, trace_id: str) -> Span:
    store = span_store(traces_dir)
    deadline = time.monotonic() + 20
    while True:
        spans = [
            s for s in store.spans() if s.trace_id == trace_id and s.kind == "server"
        ]
        if spans:
            return spans[0]
        assert time.monotonic() < deadline, f"no server span of {trace_id} stored"
        time.sleep(0.1)


def test_a_purchase_answers_with_its_trace_and_the_confirmation_shows_it(shop):
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    with httpx.Client(base_url=shop.url) as visitor:
        # given a visitor whose browser sends a traceparent with buy now
        answer = _buy(visitor, shop.url, {"traceparent": f"00-{trace_id}-{parent}-01"})
        # then the 303 names the trace the order was placed in
        assert answer.status_code == 303
        assert answer.headers["X-Trace-Id"] == trace_id
        # and the confirmation shows it, small and muted
        confirmation = visitor.get(answer.headers["location"])
    assert confirmation.status_code == 200
    assert re.search(
        rf'<p class="muted small trace-id">Trace {trace_id}</p>', confirmation.text
    )
    # and the confirmation page itself is a trace of its own
    assert TRACE_ID.match(confirmation.headers["X-Trace-Id"])
    assert confirmation.headers["X-Trace-Id"] != trace_id


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/shop/", 200),
        ("GET", "/shop/no-such-category/", 404),
        ("POST", MUSKIE + "buy/", 403),  # no CSRF token: refused by a middleware
        ("GET", "/", 302),
    ],
)
def test_every_answer_names_its_trace(shop, method, path, status):
    # when any page is asked for, found or not, allowed or not
    answer = httpx.request(method, shop.url + path)
    # then the answer carries a trace id
    assert answer.status_code == status
    assert TRACE_ID.match(answer.headers["X-Trace-Id"])


HOSTILE_TRACEPARENTS = {
    "bad hex": "00-zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-00f067aa0ba902b7-01",
    "upper-case hex": f"00-{SENT_TRACE.upper()}-{SENT_PARENT.upper()}-01",
    "version ff": f"ff-{SENT_TRACE}-{SENT_PARENT}-01",
    "all-zero trace id": f"00-{'0' * 32}-{SENT_PARENT}-01",
    "all-zero parent id": f"00-{SENT_TRACE}-{'0' * 16}-01",
    "too short": f"00-{SENT_TRACE[:30]}-{SENT_PARENT}-01",
    "version 00 with extra fields": f"{VALID}-extra",
    "two traceparents in one": f"{VALID},{VALID}",
    "10 KB of garbage": "00-" + "a" * 10 * 1024,
    "non-ASCII": f"00-{SENT_TRACE[:-1]}é-{SENT_PARENT}-01",
    "empty": "",
    "control characters": f"00-{SENT_TRACE}\t-{SENT_PARENT}-01",
}


@pytest.mark.parametrize("name", HOSTILE_TRACEPARENTS)
def test_a_hostile_traceparent_starts_a_new_trace_and_never_fails(shop, name):
    # given a request whose traceparent is malformed or hostile
    header = HOSTILE_TRACEPARENTS[name].encode("utf-8")
    # when it asks for the Muskie page
    answer = httpx.get(shop.url + MUSKIE, headers={b"traceparent": header})
    # then the page is served, in a new trace of its own
    assert answer.status_code == 200
    trace_id = answer.headers["X-Trace-Id"]
    assert TRACE_ID.match(trace_id)
    assert trace_id not in {SENT_TRACE, "0" * 32}


HOSTILE_TRACESTATES = {
    "10 KB": "vendor=" + "b" * 10 * 1024,
    "non-ASCII": "vendor=välue€",
    "malformed member": "no equals sign,=,k=",
    "40 members": ",".join(f"k{i}=v" for i in range(40)),
    "duplicate keys": "k=1,k=2",
}


@pytest.mark.parametrize("name", HOSTILE_TRACESTATES)
def test_a_hostile_tracestate_is_dropped_and_the_trace_goes_on(shop, traces_dir, name):
    trace_id = secrets.token_hex(16)
    headers = {
        b"traceparent": f"00-{trace_id}-{SENT_PARENT}-01".encode(),
        b"tracestate": HOSTILE_TRACESTATES[name].encode("utf-8"),
    }
    # when a valid traceparent comes with a tracestate that is not
    answer = httpx.get(shop.url + MUSKIE, headers=headers)
    # then the page is served in the caller's trace (W3C: drop tracestate, keep going)
    assert answer.status_code == 200
    assert answer.headers["X-Trace-Id"] == trace_id
    # and the shop's span carries no tracestate on
    assert _server_span(traces_dir, trace_id).trace_state == ""


def test_a_valid_tracestate_is_kept(shop, traces_dir):
    trace_id = secrets.token_hex(16)
    headers = {
        "traceparent": f"00-{trace_id}-{SENT_PARENT}-01",
        "tracestate": "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
    }
    answer = httpx.get(shop.url + MUSKIE, headers=headers)
    assert answer.headers["X-Trace-Id"] == trace_id
    span = _server_span(traces_dir, trace_id)
    assert span.trace_state == "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"


def test_an_order_placed_with_a_hostile_traceparent_goes_through(shop):
    with httpx.Client(base_url=shop.url) as visitor:
        # given buy now with a version-ff traceparent and a 10 KB tracestate
        answer = _buy(
            visitor,
            shop.url,
            {
                "traceparent": HOSTILE_TRACEPARENTS["version ff"],
                "tracestate": HOSTILE_TRACESTATES["10 KB"],
            },
        )
        # then the order is placed, in a new trace that the confirmation shows
        assert answer.status_code == 303
        new_trace = answer.headers["X-Trace-Id"]
        assert new_trace != SENT_TRACE
        confirmation = visitor.get(answer.headers["location"])
    assert f"Trace {new_trace}" in confirmation.text
