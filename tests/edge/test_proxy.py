"""Through a running edge to running origins: headers, cookies, redirects, bodies,
streaming, websockets and the edge's own errors (413, 429, 502, 504), on both
engines (the Python edge, and nginx driven by the same table)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from tests.support.edge import (
    ENGINES,
    Process,
    edge_process,
    engine_of,
    origin_process,
    python_only,
    raw_request,
    set_mode,
)
from tests.support.processes import free_port

LIMITS_TABLE = """
[origins]
shop = { env = "SHOP_URL", default = "http://127.0.0.1:8001" }
orders = { env = "ORDERS_URL", default = "http://127.0.0.1:8002" }
refused = { env = "REFUSED_URL", default = "http://127.0.0.1:1" }
reset = { env = "RESET_URL", default = "http://127.0.0.1:1" }
brief = { env = "BRIEF_URL", default = "http://127.0.0.1:1" }
stale = { env = "STALE_URL", default = "http://127.0.0.1:1" }

[defaults]
timeout = 5.0
max_body = 1024

[[profiles.legacy]]
name = "internal-deny"
path = "/internal/*"
kind = "deny"

[[profiles.legacy]]
name = "cached"
path = "/cached/*"
origin = "orders"
cache_control = "public, max-age=30"

[[profiles.legacy]]
name = "slow"
path = "/slow/*"
origin = "orders"
timeout = 0.5

[[profiles.legacy]]
name = "rated"
path = "/rated/*"
origin = "orders"
rate = "1/m"
burst = 3

[[profiles.legacy]]
name = "big"
path = "/big/*"
origin = "orders"
max_body = 67108864

[[profiles.legacy]]
name = "refused"
path = "/refused/*"
origin = "refused"

[[profiles.legacy]]
name = "reset"
path = "/reset/*"
origin = "reset"

[[profiles.legacy]]
name = "brief"
path = "/brief/*"
origin = "brief"

[[profiles.legacy]]
name = "stale"
path = "/stale/*"
origin = "stale"

[[profiles.legacy]]
name = "default"
path = "/*"
origin = "shop"

[[profiles.strangler]]
name = "internal-deny"
path = "/internal/*"
kind = "deny"

[[profiles.strangler]]
name = "default"
path = "/*"
origin = "orders"
"""


@pytest.fixture(scope="module")
def stale_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def brief_origin(stale_port: int) -> Iterator[Process]:
    """An origin that closes idle kept-alive connections after 0.8 s; on
    `stale_port`, one that closes them when the second request comes."""
    with origin_process("brief", keep_alive=0.8, stale_port=stale_port) as origin:
        yield origin


@pytest.fixture
def edge(any_edge: Process) -> Process:
    return any_edge


@pytest.fixture(scope="module", params=ENGINES)
def limits_edge(
    request: pytest.FixtureRequest,
    shop_origin: Process,
    orders_origin: Process,
    reset_port: int,
    brief_origin: Process,
    stale_port: int,
) -> Iterator[Process]:
    """An edge with small limits and broken origins, from a table of its own."""
    with tempfile.TemporaryDirectory() as folder:
        table = Path(folder) / "routes.toml"
        table.write_text(LIMITS_TABLE)
        with edge_process(
            shop_origin.url,
            orders_origin.url,
            engine=str(request.param),
            EDGE_ROUTES_FILE=str(table),
            REFUSED_URL=f"http://127.0.0.1:{free_port()}",
            RESET_URL=f"http://127.0.0.1:{reset_port}",
            BRIEF_URL=brief_origin.url,
            STALE_URL=f"http://127.0.0.1:{stale_port}",
        ) as edge:
            yield edge


@pytest.fixture
def strangler(edge: Process) -> Process:
    set_mode(edge, "strangler")
    return edge


def echo(answer: httpx.Response) -> dict[str, object]:
    assert answer.headers["content-type"] == "application/json", answer.text
    return dict(answer.json())


def header_map(doc: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in doc["headers"]:
        out.setdefault(name, []).append(value)
    return out


def test_the_origin_gets_forwarding_headers_and_the_visitors_host(
    edge: Process,
) -> None:
    # given a visitor behind another proxy, with a trace already started
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    answer = httpx.get(
        edge.url + "/shop/?q=1",
        headers={
            "X-Forwarded-For": "203.0.113.9",
            "traceparent": f"00-{trace}-00f067aa0ba902b7-01",
        },
    )
    # when the origin answers, then it saw the chain, the scheme, the host asked for
    seen = header_map(echo(answer))
    assert seen["x-forwarded-for"] == ["203.0.113.9, 127.0.0.1"]
    assert seen["x-forwarded-proto"] == ["http"]
    assert seen["host"] == [f"127.0.0.1:{edge.port}"]
    assert seen["x-forwarded-host"] == [f"127.0.0.1:{edge.port}"]
    assert echo(answer)["query"] == "q=1"
    if engine_of(edge) == "nginx":
        # nginx starts no span: the visitor's context goes on, the origin's is first
        assert seen["traceparent"] == [f"00-{trace}-00f067aa0ba902b7-01"]
        return
    # and the same trace, with the edge's call as the parent span, not the visitor's
    assert seen["traceparent"][0].startswith(f"00-{trace}-")
    assert "-00f067aa0ba902b7-" not in seen["traceparent"][0]


def test_with_tracing_off_the_visitors_trace_context_passes_untouched(
    shop_origin: Process, orders_origin: Process, edge: Process
) -> None:
    python_only(edge, "never traces (a separate edge of the Python engine here)")
    # given an edge with tracing switched off
    context = {
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "tracestate": "fishing=rod",
    }
    with edge_process(
        shop_origin.url, orders_origin.url, OTEL_SDK_DISABLED="true"
    ) as untraced:
        # when a visitor with a trace asks for a page
        answer = httpx.get(untraced.url + "/shop/", headers=context)
    # then the origin gets the visitor's trace context as it was
    seen = header_map(echo(answer))
    assert seen["traceparent"] == [context["traceparent"]]
    assert seen["tracestate"] == [context["tracestate"]]
    # and the edge names no trace of its own
    assert "x-trace-id" not in answer.headers


def test_the_origin_gets_the_visitors_headers_and_none_of_the_clients_own(
    edge: Process,
) -> None:
    # given visitors that send no User-Agent, Accept or Content-Type
    for method, body in [("GET", None), ("POST", None), ("POST", b"a=1")]:
        answer = raw_request(edge.bound_port, method, "/shop/", body=body)
        seen = header_map(answer.json())
        # then the origin gets none that the edge's HTTP client would add itself
        for name in ["user-agent", "accept", "content-type"]:
            assert name not in seen, (method, body, name)
        assert seen["accept-encoding"] == ["identity"]
        # but the visitor's, a POST's length, the forwarding and trace headers (the
        # Python edge's span's; nginx starts no trace)
        assert seen.pop("content-length", None) == (
            None if method == "GET" else [str(len(body or b""))]
        )
        traced = {"traceparent"} if engine_of(edge) == "python" else set()
        assert set(seen) == {
            "host", "accept-encoding", "x-forwarded-for", "x-forwarded-proto",
            "x-forwarded-host", *traced,
        }  # fmt: skip


def test_hop_by_hop_request_headers_stop_at_the_edge(edge: Process) -> None:
    python_only(edge, "does not drop the headers a Connection header names")
    answer = raw_request(
        edge.bound_port,
        "GET",
        "/shop/",
        headers={
            "Connection": "keep-alive, X-Private",
            "X-Private": "secret",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Proxy-Authorization": "Basic eDp5",
            "X-End-To-End": "kept",
        },
    )
    seen = header_map(answer.json())
    for name in ["connection", "x-private", "keep-alive", "te", "proxy-authorization"]:
        assert name not in seen
    assert seen["x-end-to-end"] == ["kept"]


def test_hop_by_hop_response_headers_stop_at_the_edge(edge: Process) -> None:
    python_only(edge, "does not drop the headers an origin's Connection header names")
    answer = httpx.get(edge.url + "/__origin/hop")
    assert answer.status_code == 200
    for name in ["x-private-hop", "keep-alive", "proxy-authenticate"]:
        assert name not in answer.headers
    assert answer.headers["x-end-to-end"] == "kept"
    # and the edge's server writes one Date and one Server, not the origin's too
    assert len(answer.headers.get_list("date")) == 1
    assert len(answer.headers.get_list("server")) == 1


def test_every_response_says_route_origin_and_timing(edge: Process) -> None:
    for path in ["/shop/", "/__origin/redirect", "/nothing/here"]:
        answer = httpx.get(edge.url + path)
        assert answer.headers["x-edge-route"] == "default"
        assert answer.headers["x-edge-origin"] == "shop"
        assert answer.headers["server-timing"].startswith("edge;dur=")


def test_several_set_cookie_headers_all_reach_the_visitor(edge: Process) -> None:
    answer = httpx.get(edge.url + "/__origin/cookies")
    assert answer.headers.get_list("set-cookie") == [
        "first=1; Path=/",
        "second=2; Path=/; HttpOnly",
        "third=3; Path=/shop; SameSite=Lax",
    ]


def test_cookies_of_one_visitor_never_reach_another(edge: Process) -> None:
    # given a visitor who was given cookies through the edge
    with httpx.Client(base_url=edge.url) as first:
        first.get("/__origin/cookies")
        assert "cookie" in header_map(echo(first.get("/shop/")))
    # when another visitor asks, then the origin sees no cookie at all
    assert "cookie" not in header_map(echo(httpx.get(edge.url + "/shop/")))


def test_redirects_pass_through_untouched(edge: Process) -> None:
    answer = httpx.get(edge.url + "/__origin/redirect", follow_redirects=False)
    assert answer.status_code == 302
    assert answer.headers["location"] == "/__origin/landed"
    assert answer.headers["set-cookie"] == "seen=yes; Path=/"


def test_compressed_bodies_are_passed_on_as_they_are(edge: Process) -> None:
    answer = raw_request(edge.bound_port, "GET", "/__origin/gzip")
    assert answer.headers["content-encoding"] == "gzip"
    assert answer.body[:2] == b"\x1f\x8b"


def test_a_large_response_streams_through_whole(edge: Process) -> None:
    # given an origin that streams 48 MiB without a Content-Length
    size = 48 * 1024 * 1024
    expected = hashlib.sha256((bytes(range(256)) * 256) * (size // 65536)).hexdigest()
    digest = hashlib.sha256()
    received = 0
    # when a visitor downloads it through the edge
    with httpx.stream("GET", edge.url + f"/__origin/stream?bytes={size}") as answer:
        assert answer.status_code == 200
        assert "content-length" not in answer.headers
        for chunk in answer.iter_raw():
            digest.update(chunk)
            received += len(chunk)
    # then every byte arrived, in order
    assert received == size
    assert digest.hexdigest() == expected


def test_the_edge_sets_cache_control_only_where_a_behaviour_says(
    limits_edge: Process,
) -> None:
    # given an origin that says nothing about caching
    plain = httpx.get(limits_edge.url + "/small")
    # when a behaviour says nothing either, then the edge adds nothing
    assert plain.status_code == 200
    assert "cache-control" not in plain.headers
    # and a behaviour that says one gets it on its answers
    cached = httpx.get(limits_edge.url + "/cached/page")
    assert cached.headers["x-edge-route"] == "cached"
    assert cached.headers["cache-control"] == "public, max-age=30"


def test_a_large_request_body_reaches_the_origin_whole(limits_edge: Process) -> None:
    body = os.urandom(8 * 1024 * 1024)
    answer = httpx.post(limits_edge.url + "/big/upload", content=body, timeout=30)
    doc = echo(answer)
    assert doc["body_bytes"] == len(body)
    assert doc["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_a_chunked_body_within_the_limit_reaches_the_origin_with_a_length(
    limits_edge: Process,
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"a" * 500
        yield b"b" * 500

    doc = echo(httpx.post(limits_edge.url + "/small", content=chunks()))
    assert doc["body_bytes"] == 1000
    assert header_map(doc)["content-length"] == ["1000"]


def test_a_body_over_the_limit_is_refused_up_front_with_413(
    limits_edge: Process,
) -> None:
    answer = httpx.post(limits_edge.url + "/small", content=b"x" * 1025)
    assert answer.status_code == 413
    assert answer.text == "Request body too large\n"
    assert answer.headers["x-edge-route"] == "default"


def test_a_chunked_body_over_the_limit_is_refused_while_counting(
    limits_edge: Process,
) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(8):
            yield b"x" * 512

    answer = httpx.post(limits_edge.url + "/small", content=chunks())
    assert answer.status_code == 413


def test_an_origin_that_refuses_connections_is_a_502(limits_edge: Process) -> None:
    answer = httpx.get(limits_edge.url + "/refused/page")
    assert answer.status_code == 502
    assert answer.text == "Bad gateway\n"
    assert answer.headers["x-edge-origin"] == "refused"


def test_an_origin_that_resets_the_connection_is_a_502(limits_edge: Process) -> None:
    for method in ["GET", "POST"]:
        answer = httpx.request(method, limits_edge.url + "/reset/page", content=b"{}")
        assert answer.status_code == 502
        assert answer.text == "Bad gateway\n"


def test_an_origin_slower_than_the_behaviours_timeout_is_a_504(
    limits_edge: Process,
) -> None:
    answer = httpx.get(limits_edge.url + "/slow/__origin/slow?ms=3000", timeout=10)
    assert answer.status_code == 504
    assert answer.text == "Gateway timeout\n"
    assert answer.headers["x-edge-route"] == "slow"


def test_a_client_over_its_rate_gets_429_with_retry_after(limits_edge: Process) -> None:
    # given a behaviour of 1 request a minute with a burst of 3 (per edge worker)
    with httpx.Client(base_url=limits_edge.url) as client:
        answers = [client.get("/rated/thing") for _ in range(12)]
    # when a client sends 12, then at most the bursts of the 2 workers get through
    statuses = [a.status_code for a in answers]
    assert statuses.count(200) <= 6
    refused = [a for a in answers if a.status_code == 429]
    assert refused
    for answer in refused:
        assert int(answer.headers["retry-after"]) >= 1
        assert answer.text == "Too many requests\n"
        assert answer.headers["x-edge-route"] == "rated"


def test_the_muskie_buy_endpoint_is_rate_limited_per_client(strangler: Process) -> None:
    # given two clients on two addresses of the loopback range (the edge counts by
    # the peer's address)
    buy = "/shop/rods/muskie-casting-rod/buy/"
    greedy = httpx.Client(
        base_url=strangler.url,
        transport=httpx.HTTPTransport(local_address="127.0.0.1"),
    )
    patient = httpx.Client(
        base_url=strangler.url,
        transport=httpx.HTTPTransport(local_address="127.0.0.2"),
    )
    with greedy, patient:
        # when the first sends far more than its burst (10 a worker, 5/s)
        answers = [greedy.post(buy, data={"quantity": "1"}) for _ in range(40)]
        # and the other then asks a few times, well within its own burst
        others = [patient.post(buy, data={"quantity": "1"}) for _ in range(3)]
    # then the first was refused, with a Retry-After on every refusal
    statuses = [a.status_code for a in answers]
    assert set(statuses) == {200, 429}, statuses
    assert all(a.headers["x-edge-route"] == "muskie-buy" for a in answers)
    assert all("retry-after" in a.headers for a in answers if a.status_code == 429)
    # and the other client's requests were all served: its bucket is its own
    assert [a.status_code for a in others] == [200, 200, 200]
    assert all(a.headers["x-edge-route"] == "muskie-buy" for a in others)


def test_a_malformed_path_is_a_400_from_the_edge(edge: Process) -> None:
    # (the last looks like the nginx engine's match key: still no behaviour's)
    for path in ["/shop/%00", "/shop/%ff/", "/shop/%0a", "/.legacy/GET/shop/%ff"]:
        answer = raw_request(edge.bound_port, "GET", path)
        assert answer.status == 400
        if engine_of(edge) == "nginx" and path == "/shop/%00":
            continue  # refused by nginx's own parser, with its own page
        assert answer.body == b"Bad request\n"


def test_each_request_is_logged_as_one_json_line(edge: Process) -> None:
    # given a request with a known trace id
    trace = "0af7651916cd43dd8448eb211c80319c"
    httpx.get(
        edge.url + "/shop/rods/?page=2",
        headers={"traceparent": f"00-{trace}-b7ad6b7169203331-01"},
    )
    # when the edge has written its log (it flushes within a fraction of a second)
    deadline = time.monotonic() + 5
    lines: list[dict[str, object]] = []
    while not lines and time.monotonic() < deadline:
        lines = [
            json.loads(line)
            for line in edge.log().splitlines()
            if line.startswith("{") and trace in line
        ]
        time.sleep(0.1)
    # then one line says who asked what, where it went and how it went
    assert len(lines) == 1
    entry = lines[0]
    assert entry["method"] == "GET"
    assert entry["path"] == "/shop/rods/"
    assert entry["route"] == "default"
    assert entry["origin"] == "shop"
    assert entry["status"] == 200
    assert entry["client"] == "127.0.0.1"
    assert isinstance(entry["bytes"], int)
    assert entry["bytes"] > 0
    assert isinstance(entry["duration_ms"], float)
    assert str(entry["time"]).endswith("+00:00")


async def _websocket_round_trip(url: str) -> tuple[list[object], int | None, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, protocols=("orders.v1",)) as ws,
    ):
        protocol = ws.protocol or ""
        received: list[object] = [(await ws.receive()).data]
        await ws.send_str("ping")
        received.append((await ws.receive()).data)
        await ws.send_bytes(b"\x00\x01binary")
        received.append((await ws.receive()).data)
        await ws.send_str("close:4001:sold out")
        closing = await ws.receive()
        received.append(closing.extra)
        return received, ws.close_code, protocol


def test_a_websocket_round_trips_with_close_codes_both_ways(
    strangler: Process, orders_origin: Process
) -> None:
    # given the strangler profile, /ws/* goes to the orders service
    url = strangler.url + "/ws/orders/7/"
    # when a visitor talks to it and the origin closes with 4001
    received, code, protocol = asyncio.run(_websocket_round_trip(url))
    # then frames went both ways, and the origin's close code reached the visitor
    assert received == [
        "hello from orders /ws/orders/7/",
        "ping",
        b"\x00\x01binary",
        "sold out",
    ]
    assert code == 4001
    assert protocol == "orders.v1"

    # and when the visitor closes with 4002, the origin gets 4002
    async def visitor_closes() -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            await ws.receive()
            await ws.close(code=4002)

    asyncio.run(visitor_closes())
    deadline = time.monotonic() + 5
    while 4002 not in httpx.get(orders_origin.url + "/__origin/ws-closes").json():
        assert time.monotonic() < deadline, "the origin never saw close code 4002"
        time.sleep(0.05)


def test_head_answers_carry_headers_only_and_the_next_request_is_whole(
    edge: Process,
) -> None:
    # given a HEAD request, when the origin answers it with a Content-Length
    answer = raw_request(edge.bound_port, "HEAD", "/shop/rods/")
    # then the visitor gets the headers and no body
    assert answer.status == 200
    assert int(answer.headers["content-length"]) > 0
    assert answer.body == b""
    # and the requests after it are answered whole
    for _ in range(4):
        doc = echo(httpx.get(edge.url + "/shop/reels/"))
        assert doc["path"] == "/shop/reels/"


def test_an_origin_closing_idle_connections_costs_no_request(
    limits_edge: Process,
) -> None:
    # given an origin that closes kept-alive connections after 0.8 s of quiet (the
    # edge keeps idle ones 1.5 s), and one visitor (one edge worker, so one pool)
    connections: list[int] = []
    with httpx.Client(base_url=limits_edge.url) as client:
        for method in ["GET", "POST", "GET", "POST"]:
            # when two requests come back to back, then after a longer pause
            pair: list[httpx.Response] = []
            for _ in range(2):
                answer = client.request(method, "/brief/page", content=b"{}")
                # then every one is answered
                assert answer.status_code == 200
                assert echo(answer)["origin"] == "brief"
                pair.append(answer)
            ports = [echo(a)["client_port"] for a in pair]
            # and the second came on the first's connection: the pool reuses
            assert ports[0] == ports[1], ports
            connections.append(int(str(ports[0])))
            time.sleep(1.2)
    # and after each pause a new connection replaced the one the origin closed
    assert len(set(connections)) == len(connections), connections


def test_a_connection_the_origin_dropped_costs_a_get_nothing_and_a_post_a_502(
    limits_edge: Process, stale_port: int
) -> None:
    # given an origin that answers once per connection, then drops it at the next
    # request, and one visitor (one edge worker, so one pool); the origin serves
    # each engine's edge in turn: its log from here on
    stale_log = f"http://127.0.0.1:{stale_port}/__stale/log"
    seen_before = len(httpx.get(stale_log).json())
    with httpx.Client(base_url=limits_edge.url) as client:
        first = client.get("/stale/first")
        # when a GET meets the dropped connection
        again = client.get("/stale/again")
        # and a POST meets the connection the GET was answered on
        post = client.post("/stale/order", content=b"{}")
    # then the GET was sent once more, on a new connection, and answered
    assert first.status_code == 200
    assert again.status_code == 200
    assert echo(again)["request"] == "GET /stale/again"
    # and the POST was not: the visitor gets a 502, the origin saw it once
    assert post.status_code == 502
    assert post.text == "Bad gateway\n"
    log = httpx.get(stale_log).json()[seen_before:]
    assert log == [
        "GET /stale/first answered",
        "GET /stale/again dropped",
        "GET /stale/again answered",
        "POST /stale/order dropped",
    ]
