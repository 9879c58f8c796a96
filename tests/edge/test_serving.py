"""The edge's answer transport (edge_router/serving.py) on a real socket pair and a
real uvloop event loop: a held head is never lost, late or out of order."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import uvloop

from edge_router.serving import AnswerTransport

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"
Scenario = Callable[[AnswerTransport, socket.socket], Awaitable[None]]


class _Keep(asyncio.Protocol):
    pass


def _on_a_socket(scenario: Scenario) -> bytes:
    """What the peer reads after `scenario` wrote through an AnswerTransport (and
    read from the peer itself, if it did)."""
    ours, peer = socket.socketpair()

    async def run() -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_accepted_socket(_Keep, ours)
        answers = AnswerTransport(transport, loop)
        await scenario(answers, peer)
        await asyncio.sleep(0.05)
        if not answers.is_closing():
            transport.close()

    with peer:
        peer.settimeout(2)
        uvloop.run(run())
        received = b""
        while chunk := peer.recv(65536):
            received += chunk
        return received


def test_a_head_and_its_body_arrive_whole_and_in_order() -> None:
    async def answer(out: AnswerTransport, peer: socket.socket) -> None:
        out.write(HEAD)
        out.write(b"hello")

    assert _on_a_socket(answer) == HEAD + b"hello"


def test_the_head_is_sent_before_the_body_comes() -> None:
    got: list[bytes] = []

    async def answer(out: AnswerTransport, peer: socket.socket) -> None:
        out.write(HEAD)
        # when the body is late, a peer reading meanwhile has the head already
        await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        got.append(await loop.run_in_executor(None, peer.recv, 65536))
        out.write(b"hello")

    assert _on_a_socket(answer) == b"hello"
    assert got == [HEAD]


def test_closing_sends_what_is_held_first() -> None:
    async def answer(out: AnswerTransport, peer: socket.socket) -> None:
        out.write(HEAD)
        out.close()

    assert _on_a_socket(answer) == HEAD


def test_100_continue_is_not_held() -> None:
    got: list[bytes] = []

    async def answer(out: AnswerTransport, peer: socket.socket) -> None:
        out.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        # read within the same turn of the loop: nothing may wait for the next
        got.append(peer.recv(65536))

    assert _on_a_socket(answer) == b""
    assert got == [b"HTTP/1.1 100 Continue\r\n\r\n"]
