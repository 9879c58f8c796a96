"""The edge's client to its origins (edge_router/origin_client.py), against real
servers on real sockets: small HTTP/1.1 servers written out byte by byte here, so
each test says exactly what the origin sends. Through a running edge, the same
client is tested by test_proxy.py (502, 504, retries, keep-alive, streaming)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from edge_router.origin_client import OriginPool, OriginResponse
from edge_router.origin_connection import READ_BUFSIZE

Answer = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]


class RawOrigin:
    """A server that reads each request's head and lets `answer` write bytes back
    (it says whether the connection stays open); it counts what it saw."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.closed = 0
        self.busy = 0
        self.most_busy = 0
        self.requests: list[bytes] = []

    async def serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = _length(head)
                body = await reader.readexactly(length) if length else b""
                self.requests.append(head + body)
                self.busy += 1
                self.most_busy = max(self.most_busy, self.busy)
                try:
                    keep = await self.answer(head, writer)
                finally:
                    self.busy -= 1
                if not keep:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.closed += 1
            writer.close()


def _length(head: bytes) -> int:
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


def ok(body: bytes = b"ok", delay: float = 0.0) -> Answer:
    async def answer(head: bytes, writer: asyncio.StreamWriter) -> bool:
        if delay:
            await asyncio.sleep(delay)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body))
        if not head.startswith(b"HEAD "):
            writer.write(body)
        await writer.drain()
        return True

    return answer


async def _with_origin(
    answer: Answer,
    test: Callable[[OriginPool, int, RawOrigin], Awaitable[None]],
    **pool_options: float,
) -> RawOrigin:
    origin = RawOrigin(answer)
    server = await asyncio.start_server(origin.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    options = {"connections": 100, "per_origin": 10, "keepalive": 5.0, **pool_options}
    pool = OriginPool(
        connections=int(options["connections"]),
        per_origin=int(options["per_origin"]),
        keepalive=options["keepalive"],
    )
    try:
        await test(pool, port, origin)
    finally:
        await pool.close()
        server.close()
    return origin


async def get(
    pool: OriginPool, port: int, method: str = "GET", timeout: float = 2.0
) -> tuple[OriginResponse, bytes]:
    headers = [("host", "shop.test"), ("accept", "*/*")]
    response = await pool.request(
        method, "127.0.0.1", port, "/page?x=1", headers, None, timeout=timeout
    )
    body = await response.read()
    response.release()
    return response, body


def test_requests_share_kept_alive_connections_up_to_the_per_origin_cap() -> None:
    async def test(pool: OriginPool, port: int, origin: RawOrigin) -> None:
        # when six requests come at once to an origin the pool may open 2 to
        answers = await asyncio.gather(*(get(pool, port) for _ in range(6)))
        # then every one is answered, on two connections, two at a time
        assert [body for _, body in answers] == [b"ok"] * 6
        assert origin.connections == 2
        assert origin.most_busy == 2
        # and the next ones reuse them
        await get(pool, port)
        assert origin.connections == 2

    asyncio.run(_with_origin(ok(delay=0.1), test, per_origin=2))


def test_a_wait_for_a_connection_past_the_timeout_is_a_timeout() -> None:
    async def test(pool: OriginPool, port: int, origin: RawOrigin) -> None:
        # given the only connection allowed busy with a slow answer
        slow = asyncio.create_task(get(pool, port))
        await asyncio.sleep(0.05)
        # when another request waits for it longer than its timeout
        began = time.monotonic()
        with pytest.raises(TimeoutError):
            await get(pool, port, timeout=0.2)
        # then it times out on time, and the slow one is still answered
        assert time.monotonic() - began < 0.45
        assert (await slow)[1] == b"ok"
        assert origin.connections == 1

    asyncio.run(_with_origin(ok(delay=0.8), test, per_origin=1))


def test_an_answer_slower_than_the_timeout_is_a_timeout_and_its_connection_goes(
) -> None:  # fmt: skip
    async def answer(head: bytes, writer: asyncio.StreamWriter) -> bool:
        # The first request is answered too late; the ones after at once.
        return await ok(delay=3.0 if b"/late" in head else 0)(head, writer)

    async def test(pool: OriginPool, port: int, origin: RawOrigin) -> None:
        began = time.monotonic()
        with pytest.raises(TimeoutError):
            await pool.request("GET", "127.0.0.1", port, "/late", [], None, timeout=0.2)
        assert 0.2 <= time.monotonic() - began < 0.45
        # and the next request is not sent on that connection, whose answer is late
        assert (await get(pool, port))[1] == b"ok"
        assert origin.connections == 2

    asyncio.run(_with_origin(answer, test))


def test_the_request_carries_the_visitors_headers_and_a_length_for_a_body() -> None:
    async def test(pool: OriginPool, port: int, origin: RawOrigin) -> None:
        headers = [
            ("host", "shop.test"), ("content-length", "99"),
            ("expect", "100-continue"), ("x-forwarded-for", "10.0.0.1"),
        ]  # fmt: skip
        response = await pool.request(
            "POST", "127.0.0.1", port, "/buy", headers, b'{"n": 1}', timeout=2.0
        )
        assert await response.read() == b"ok"
        response.release()
        # a POST without a body still says its length; a visitor without Host
        # gets the origin's
        response = await pool.request(
            "POST", "127.0.0.1", port, "/b", [], None, timeout=2.0, add_host=True
        )
        await response.read()
        response.release()
        assert origin.requests == [
            b"POST /buy HTTP/1.1\r\nhost: shop.test\r\n"
            b"x-forwarded-for: 10.0.0.1\r\ncontent-length: 8\r\n\r\n"
            b'{"n": 1}',
            b"POST /b HTTP/1.1\r\nhost: 127.0.0.1:%d\r\ncontent-length: 0\r\n\r\n"
            % port,
        ]

    asyncio.run(_with_origin(ok(), test))


def test_a_head_answer_with_a_length_leaves_the_connection_ready() -> None:
    async def test(pool: OriginPool, port: int, origin: RawOrigin) -> None:
        # given a HEAD answered with a length and no body
        response, body = await get(pool, port, method="HEAD")
        assert (response.status, response.content_length, body) == (200, 7, b"")
        # when a GET follows on the same connection, then it is read whole
        _, body = await get(pool, port)
        assert body == b"content"
        assert origin.connections == 1

    asyncio.run(_with_origin(ok(b"content"), test))


def test_interim_answers_are_passed_over() -> None:
    async def answer(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(
            b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n"
            b"HTTP/1.1 201 Created\r\nx-one: 1\r\ncontent-length: 4\r\n\r\ndone"
        )
        return True

    async def test(pool: OriginPool, port: int, origin: RawOrigin) -> None:
        response, body = await get(pool, port)
        assert response.status == 201
        assert response.raw_headers == [(b"x-one", b"1"), (b"content-length", b"4")]
        assert body == b"done"

    asyncio.run(_with_origin(answer, test))


def test_a_body_that_ends_with_the_connection_is_read_whole_and_not_reused() -> None:
    async def answer(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nx-a: b\r\n\r\nuntil the end")
        return False

    async def test(pool: OriginPool, port: int, origin: RawOrigin) -> None:
        for _ in range(2):
            _, body = await get(pool, port)
            assert body == b"until the end"
        assert origin.connections == 2

    asyncio.run(_with_origin(answer, test))


def test_a_body_cut_short_is_a_connection_error() -> None:
    async def answer(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
        return False

    async def test(pool: OriginPool, port: int, origin: RawOrigin) -> None:
        with pytest.raises(ConnectionError):
            await get(pool, port)

    asyncio.run(_with_origin(answer, test))


def test_an_unreadable_answer_is_a_connection_error() -> None:
    async def answer(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n"
        )
        return True

    async def test(pool: OriginPool, port: int, origin: RawOrigin) -> None:
        with pytest.raises(ConnectionError):
            await get(pool, port)

    asyncio.run(_with_origin(answer, test))


def test_a_large_body_streams_whole_with_little_buffered() -> None:
    size = 4 * 1024 * 1024
    payload = bytes(range(256)) * (size // 256)

    async def test(pool: OriginPool, port: int, origin: RawOrigin) -> None:
        response = await pool.request(
            "GET", "127.0.0.1", port, "/big", [], None, timeout=2.0, add_host=True
        )
        got: list[bytes] = []
        most = 0
        # a slow reader: the origin is paused rather than buffered without bound
        while chunk := await response.next_chunk():
            most = max(most, len(chunk))
            got.append(chunk)
            await asyncio.sleep(0.001)
        response.release()
        assert b"".join(got) == payload
        assert most <= READ_BUFSIZE + 256 * 1024

    asyncio.run(_with_origin(ok(payload), test))


def test_idle_connections_are_closed_after_the_keepalive() -> None:
    async def test(pool: OriginPool, port: int, origin: RawOrigin) -> None:
        await get(pool, port)
        await asyncio.sleep(0.1)
        assert origin.closed == 0
        # when it stays idle past the keep-alive, then the pool closes it
        await asyncio.sleep(0.4)
        assert origin.closed == 1
        # and the next request opens a new one
        await get(pool, port)
        assert origin.connections == 2

    asyncio.run(_with_origin(ok(), test, keepalive=0.2))


def test_a_full_pool_closes_another_origins_idle_connection_to_make_room() -> None:
    async def test(pool: OriginPool, port: int, origin: RawOrigin) -> None:
        other = RawOrigin(ok(b"other"))
        server = await asyncio.start_server(other.serve, "127.0.0.1", 0)
        other_port = server.sockets[0].getsockname()[1]
        try:
            # given the pool's one connection idle, to the first origin
            await get(pool, port)
            # when a request comes for another origin, then it is answered in time
            assert (await get(pool, other_port, timeout=0.5))[1] == b"other"
            await asyncio.sleep(0.05)
            # and the first origin's idle connection made room for it
            assert origin.closed == 1
        finally:
            server.close()

    asyncio.run(_with_origin(ok(), test, connections=1))


def test_a_full_pool_gives_a_connection_done_with_to_another_origins_request(
) -> None:  # fmt: skip
    async def test(pool: OriginPool, port: int, origin: RawOrigin) -> None:
        other = RawOrigin(ok(b"other"))
        server = await asyncio.start_server(other.serve, "127.0.0.1", 0)
        other_port = server.sockets[0].getsockname()[1]
        try:
            # given the pool's one connection busy with the first origin's answer
            first = asyncio.create_task(get(pool, port))
            await asyncio.sleep(0.05)
            # when a request for another origin waits for room, then it is answered
            # once that answer is done, not when the idle connection would expire
            assert (await get(pool, other_port, timeout=1.0))[1] == b"other"
            assert (await first)[1] == b"ok"
        finally:
            server.close()

    asyncio.run(_with_origin(ok(delay=0.3), test, connections=1))
