"""Visitors who hold on: slow headers, slow bodies, too many connections, idle
websockets, and requests the HTTP parser refuses. Against one real edge worker with
small limits (its own table's [listener] and [websockets]), in front of real origins.
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import httpx
import pytest

from tests.support.edge import Process, admin_url, edge_process

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 2.0
BODY_IDLE = 0.7
PER_ADDRESS = 4
WEBSOCKETS_PER_ADDRESS = 6
WEBSOCKET_IDLE = 1.5
HTTP_POOL_PER_ORIGIN = 3
DENY = 'name = "internal-deny"\npath = "/internal/*"\nkind = "deny"\n'
TABLE = f"""
[origins]
shop = {{ env = "SHOP_URL", default = "http://127.0.0.1:8001" }}
orders = {{ env = "ORDERS_URL", default = "http://127.0.0.1:8002" }}

[listener]
header_timeout = {HEADER_TIMEOUT}
body_timeout = {BODY_TIMEOUT}
body_idle_timeout = {BODY_IDLE}
max_connections_per_address = {PER_ADDRESS}

[websockets]
pool = 16
max_per_address = {WEBSOCKETS_PER_ADDRESS}
idle_timeout = {WEBSOCKET_IDLE}

[[profiles.legacy]]
{DENY}
[[profiles.legacy]]
name = "orders"
path = "/orders/*"
origin = "orders"
max_body = 67108864
timeout = 2.0

[[profiles.legacy]]
name = "default"
path = "/*"
origin = "shop"

[[profiles.strangler]]
{DENY}
[[profiles.strangler]]
name = "default"
path = "/*"
origin = "shop"
"""


@pytest.fixture(scope="module")
def tight_edge(shop_origin: Process, orders_origin: Process) -> Iterator[Process]:
    """One worker (so every count is one process's), small limits, a small HTTP
    pool per origin."""
    with tempfile.TemporaryDirectory() as folder:
        table = Path(folder) / "routes.toml"
        table.write_text(TABLE)
        with edge_process(
            shop_origin.url,
            orders_origin.url,
            workers=1,
            EDGE_ROUTES_FILE=str(table),
            EDGE_UPSTREAM_CONNECTIONS_PER_ORIGIN=str(HTTP_POOL_PER_ORIGIN),
        ) as edge:
            yield edge


def connect(edge: Process) -> socket.socket:
    return socket.create_connection(("127.0.0.1", edge.bound_port), timeout=10)


def read_all(sock: socket.socket) -> bytes:
    """Everything the edge sends until it closes the connection."""
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


def refused(edge: Process, reason: str) -> float:
    """edge_connections_refused_total{reason} from the admin listener's metrics."""
    metrics = httpx.get(admin_url(edge) + "/_edge/metrics").text
    line = f'edge_connections_refused_total{{reason="{reason}"}} '
    rows = [row for row in metrics.splitlines() if row.startswith(line)]
    return float(rows[0].split()[-1]) if rows else 0.0


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer else 0


def half_headers(edge: Process) -> tuple[bytes, float]:
    """Half a request's headers, then nothing: what the edge sent, and when it
    closed (seconds after)."""
    with connect(edge) as sock:
        sock.sendall(b"GET /shop/ HTTP/1.1\r\nHost: edge\r\nX-Half: ")
        started = time.monotonic()
        answer = read_all(sock)
    return answer, time.monotonic() - started


def test_a_visitor_that_stops_inside_its_headers_gets_408_and_is_closed(
    tight_edge: Process,
) -> None:
    # given a visitor that sends half its headers, then nothing
    before = refused(tight_edge, "header_timeout")
    # when it waits, then the edge answers 408 within the deadline and closes
    answer, took = half_headers(tight_edge)
    assert status_of(answer) == 408
    assert b"connection: close" in answer.lower()
    assert HEADER_TIMEOUT * 0.8 <= took < HEADER_TIMEOUT + 2
    # and it is counted
    assert refused(tight_edge, "header_timeout") == before + 1


def test_headers_that_trickle_in_are_cut_at_the_deadline_not_between_bytes(
    tight_edge: Process,
) -> None:
    # given a visitor sending a header byte every fifth of a second, forever
    with connect(tight_edge) as sock:
        sock.sendall(b"GET /shop/ HTTP/1.1\r\n")
        started = time.monotonic()
        sock.settimeout(0.2)
        answer = b""
        while time.monotonic() - started < HEADER_TIMEOUT + 3:
            try:
                sock.sendall(b"X")
                answer += sock.recv(65536)
                break
            except TimeoutError:
                continue
            except OSError:
                break
    # then the edge cut it once the headers' deadline passed
    assert status_of(answer) == 408
    assert time.monotonic() - started < HEADER_TIMEOUT + 2


def test_a_connection_that_never_sends_a_request_is_closed_silently(
    tight_edge: Process,
) -> None:
    with connect(tight_edge) as sock:
        started = time.monotonic()
        assert read_all(sock) == b""
    assert time.monotonic() - started < HEADER_TIMEOUT + 2


def test_a_body_that_stops_coming_gets_408_and_the_origin_never_hears_of_it(
    tight_edge: Process, orders_origin: Process
) -> None:
    # given a visitor announcing 200 KB for an origin that would hold the request
    with connect(tight_edge) as sock:
        sock.sendall(
            b"POST /orders/__origin/slow?ms=5000 HTTP/1.1\r\nHost: edge\r\n"
            b"Content-Length: 200000\r\n\r\n" + b"x" * 100_000
        )
        time.sleep(BODY_IDLE / 2)
        # when half the body is in, then the origin has not been asked yet
        inflight = httpx.get(orders_origin.url + "/__origin/inflight").text
        assert inflight == "0"
        # and when no more comes, the edge answers 408 and closes
        answer = read_all(sock)
    assert status_of(answer) == 408
    assert answer.endswith(b"Request timeout\n")
    assert b"x-edge-route: orders" in answer.lower()
    assert httpx.get(orders_origin.url + "/__origin/inflight").text == "0"


def test_a_body_trickling_in_under_the_idle_limit_is_cut_at_the_total_deadline(
    tight_edge: Process,
) -> None:
    # given a body that comes a byte at a time, each within the idle limit
    with connect(tight_edge) as sock:
        sock.sendall(
            b"POST /orders/echo HTTP/1.1\r\nHost: edge\r\nContent-Length: 100\r\n\r\n"
        )
        started = time.monotonic()
        sock.settimeout(BODY_IDLE / 2)
        answer = b""
        for _ in range(100):
            try:
                sock.sendall(b"y")
                answer += sock.recv(65536)
                break
            except TimeoutError:
                continue
    # then the edge stops it at the body's total deadline
    assert status_of(answer) == 408
    took = time.monotonic() - started
    assert BODY_TIMEOUT * 0.8 <= took < BODY_TIMEOUT + 2


def test_a_whole_body_that_came_in_time_reaches_the_origin(
    tight_edge: Process,
) -> None:
    body = b"z" * 300_000
    answer = httpx.post(tight_edge.url + "/orders/echo", content=body, timeout=10)
    assert answer.status_code == 200
    assert answer.json()["body_bytes"] == len(body)
    assert answer.json()["headers"].count(["content-length", "300000"]) == 1


def test_one_address_cannot_hold_more_than_its_share_of_connections(
    tight_edge: Process,
) -> None:
    # given an address holding as many open connections as it may
    held = [connect(tight_edge) for _ in range(PER_ADDRESS)]
    try:
        for sock in held:
            sock.sendall(b"GET /shop/ HTTP/1.1\r\nHost: edge\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        # when it opens one more, then that one is refused at once and closed
        with connect(tight_edge) as extra:
            answer = read_all(extra)
        assert status_of(answer) == 429
        assert b"retry-after: 1" in answer.lower()
    finally:
        for sock in held:
            sock.close()
    # and once it lets go of them, it is served again
    deadline = time.monotonic() + 5
    while httpx.get(tight_edge.url + "/shop/").status_code != 200:
        assert time.monotonic() < deadline
    # and the refusal is counted
    assert refused(tight_edge, "per_address") >= 1


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /shop/ HTTP/1.1\r\nHost: e\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /internal/ HTTP/1.1\r\n\r\n",
        b"POST /shop/ HTTP/1.1\r\nHost: e\r\nContent-Length: 5\r\n"
        b"Content-Length: 6\r\n\r\nhello!",
        b"POST /shop/ HTTP/1.1\r\nHost: e\r\nContent-Length: 5\r\n"
        b"Content-Length: 5\r\n\r\nhello",
        b"GET /shop/ HTTP/1.1\r\nHost: e\r\nX-Folded: a\r\n b\r\n\r\n",
    ],
    ids=["length-and-chunked", "two-lengths", "two-equal-lengths", "obs-fold"],
)
def test_ambiguous_framing_is_refused_with_400_before_any_origin(
    tight_edge: Process, request_bytes: bytes
) -> None:
    # given a request a proxy and an origin could read two ways
    with connect(tight_edge) as sock:
        sock.sendall(request_bytes)
        answer = read_all(sock)
    # then the edge's parser refuses it, and no origin answered
    assert status_of(answer) == 400
    assert answer.count(b"HTTP/1.1") == 1
    assert b"x-origin" not in answer.lower()


async def _open_websockets(
    url: str, count: int
) -> tuple[list[aiohttp.ClientWebSocketResponse], aiohttp.ClientSession]:
    session = aiohttp.ClientSession()
    sockets = []
    for _ in range(count):
        ws = await session.ws_connect(url)
        await ws.receive()  # the origin's hello
        sockets.append(ws)
    return sockets, session


def test_idle_websockets_leave_the_http_pool_to_http(
    tight_edge: Process, orders_origin: Process
) -> None:
    async def scenario() -> tuple[int, int]:
        # given more open websockets to the orders origin than HTTP has connections
        url = tight_edge.url.replace("http", "ws") + "/orders/ws/"
        sockets, session = await _open_websockets(url, HTTP_POOL_PER_ORIGIN * 2)
        try:
            # when visitors ask the same origin for pages at once
            async with httpx.AsyncClient(timeout=10) as client:
                answers = await asyncio.gather(
                    *(
                        client.get(tight_edge.url + f"/orders/page/{i}")
                        for i in range(HTTP_POOL_PER_ORIGIN + 1)
                    )
                )
            return len(sockets), sum(a.status_code == 200 for a in answers)
        finally:
            for ws in sockets:
                await ws.close()
            await session.close()

    opened, served = asyncio.run(scenario())
    # then every page is served: the websockets took none of HTTP's connections
    assert opened == HTTP_POOL_PER_ORIGIN * 2
    assert served == HTTP_POOL_PER_ORIGIN + 1


def test_one_address_may_hold_only_so_many_websockets(tight_edge: Process) -> None:
    async def scenario() -> int:
        url = tight_edge.url.replace("http", "ws") + "/orders/ws/"
        sockets, session = await _open_websockets(url, WEBSOCKETS_PER_ADDRESS)
        try:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(url)
            return refused.value.status
        finally:
            for ws in sockets:
                await ws.close()
            await session.close()

    # given an address with its share of websockets open, its next one is a 429
    assert asyncio.run(scenario()) == 429


def test_an_idle_websocket_is_closed_and_a_talking_one_is_not(
    tight_edge: Process,
) -> None:
    async def scenario() -> tuple[int | None, float, bool]:
        url = tight_edge.url.replace("http", "ws") + "/orders/ws/"
        (quiet, talking), session = await _open_websockets(url, 2)
        started = time.monotonic()
        try:
            # given one websocket that says nothing and one that echoes every half
            # of the idle limit, for twice the idle limit
            while time.monotonic() - started < WEBSOCKET_IDLE * 2:
                await talking.send_str("still here")
                assert (await talking.receive(timeout=2)).data == "still here"
                await asyncio.sleep(WEBSOCKET_IDLE / 2)
            # then the quiet one was closed as idle (1001), the talking one was not
            closing = await quiet.receive(timeout=1)
            return closing.data, time.monotonic() - started, talking.closed
        finally:
            await quiet.close()
            await talking.close()
            await session.close()

    code, _, talking_closed = asyncio.run(scenario())
    assert code == 1001
    assert not talking_closed


# The nginx engine, rendering the same [listener] and [websockets] limits. nginx's
# `limit_conn` counts requests in progress, websockets among them: the per-address
# cap is raised here above the websockets' own, so the websocket cap is what bites.
NGINX_PER_ADDRESS = 16


@pytest.fixture(scope="module")
def tight_nginx_edge(shop_origin: Process, orders_origin: Process) -> Iterator[Process]:
    """The nginx engine, one worker, from the same table (a wider per-address cap)."""
    with tempfile.TemporaryDirectory() as folder:
        table = Path(folder) / "routes.toml"
        table.write_text(
            TABLE.replace(
                f"max_connections_per_address = {PER_ADDRESS}",
                f"max_connections_per_address = {NGINX_PER_ADDRESS}",
            )
        )
        with edge_process(
            shop_origin.url,
            orders_origin.url,
            workers=1,
            engine="nginx",
            EDGE_ROUTES_FILE=str(table),
        ) as edge:
            yield edge


def test_nginx_cuts_off_a_visitor_that_stops_inside_its_headers_at_the_deadline(
    tight_nginx_edge: Process,
) -> None:
    # given a visitor on the nginx engine that sends half its headers, then nothing
    # when it waits, then nginx closes the connection at the table's deadline
    # (client_header_timeout: nginx sends no 408, it only closes), never later
    answer, took = half_headers(tight_nginx_edge)
    assert status_of(answer) in (0, 408), answer[:200]
    assert HEADER_TIMEOUT * 0.8 <= took < HEADER_TIMEOUT + 2


def test_nginx_cuts_off_a_body_that_stops_coming_and_the_origin_never_hears_of_it(
    tight_nginx_edge: Process, orders_origin: Process
) -> None:
    # given a visitor on the nginx engine that promises a body and sends half of it
    with connect(tight_nginx_edge) as sock:
        sock.sendall(
            b"POST /orders/__origin/slow?ms=5000 HTTP/1.1\r\nHost: edge\r\n"
            b"Content-Length: 200000\r\n\r\n" + b"x" * 100_000
        )
        started = time.monotonic()
        # when it stops, then nginx gives up after the body's idle deadline
        answer = read_all(sock)
    took = time.monotonic() - started
    assert status_of(answer) in (0, 408), answer[:200]
    assert BODY_IDLE * 0.8 <= took < BODY_IDLE + 2
    # and the origin was never asked (nginx reads the whole body first)
    assert httpx.get(orders_origin.url + "/__origin/inflight").text == "0"


def test_nginx_lets_one_address_hold_only_so_many_websockets(
    tight_nginx_edge: Process,
) -> None:
    async def scenario() -> tuple[int, int]:
        url = tight_nginx_edge.url.replace("http", "ws") + "/orders/ws/"
        sockets, session = await _open_websockets(url, WEBSOCKETS_PER_ADDRESS)
        try:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(url)
            # while plain requests from the same address still pass
            async with session.get(tight_nginx_edge.url + "/shop/rods/") as page:
                return refused.value.status, page.status
        finally:
            for ws in sockets:
                await ws.close()
            await session.close()

    # given an address with its share of websockets open on the nginx engine, when
    # it opens one more, then that one is a 429 and HTTP is not affected
    assert asyncio.run(scenario()) == (429, 200)


async def _origin_holding(
    session: aiohttp.ClientSession, origin: Process, count: int
) -> None:
    """Until the origin holds `count` slow requests (a second at most)."""
    for _ in range(40):
        async with session.get(origin.url + "/__origin/inflight") as answer:
            if await answer.text() == str(count):
                return
        await asyncio.sleep(0.025)


def test_nginx_counts_no_plain_request_against_the_websocket_cap(
    tight_nginx_edge: Process, orders_origin: Process
) -> None:
    async def scenario() -> tuple[list[int], int, int]:
        url = tight_nginx_edge.url.replace("http", "ws") + "/orders/ws/"
        slow = tight_nginx_edge.url + "/orders/__origin/slow?ms=1500"
        sockets, session = await _open_websockets(url, WEBSOCKETS_PER_ADDRESS - 1)
        try:
            # given an address one websocket under its cap, with plain requests of
            # its own in progress through the same behaviour (the origin holds them)
            pending = [asyncio.create_task(session.get(slow)) for _ in range(3)]
            await _origin_holding(session, orders_origin, 3)
            # when it opens one more websocket, then that one is let through
            sockets.append(await session.ws_connect(url))
            # and the next is the one over the cap
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(url)
            answers = [await task for task in pending]
            return [a.status for a in answers], len(sockets), refused.value.status
        finally:
            for ws in sockets:
                await ws.close()
            await session.close()

    statuses, opened, refused = asyncio.run(scenario())
    assert statuses == [200, 200, 200]
    assert opened == WEBSOCKETS_PER_ADDRESS
    assert refused == 429


def test_nginx_counts_websockets_against_the_address_cap_too(
    tight_nginx_edge: Process, orders_origin: Process
) -> None:
    async def scenario() -> tuple[int, list[int]]:
        url = tight_nginx_edge.url.replace("http", "ws") + "/orders/ws/"
        slow = tight_nginx_edge.url + "/orders/__origin/slow?ms=1500"
        sockets, session = await _open_websockets(url, WEBSOCKETS_PER_ADDRESS)
        plain = NGINX_PER_ADDRESS - WEBSOCKETS_PER_ADDRESS
        try:
            # given an address holding its share of websockets, and plain requests
            # in progress that take it to its cap of requests in progress
            pending = [asyncio.create_task(session.get(slow)) for _ in range(plain)]
            await _origin_holding(session, orders_origin, plain)
            # when it asks for one more page, then that one is over the cap
            async with session.get(tight_nginx_edge.url + "/shop/rods/") as page:
                status = page.status
            answers = [await task for task in pending]
            return status, [a.status for a in answers]
        finally:
            for ws in sockets:
                await ws.close()
            await session.close()

    status, statuses = asyncio.run(scenario())
    assert status == 429
    assert statuses == [200] * (NGINX_PER_ADDRESS - WEBSOCKETS_PER_ADDRESS)
