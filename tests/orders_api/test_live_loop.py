"""The order websocket on the event loop alone: its first state read on the loop's
own connection, and no hop to asgiref's thread per message (channels' stale
connection cleanup) for a connect, a pushed state or a disconnect."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import channels.db
import pytest
from asgiref.testing import ApplicationCommunicator
from channels.layers import get_channel_layer
from django.db import close_old_connections

from orders_api.asgi import application
from orders_api.live import broadcast
from orders_api.web.fast_accept import lane_database
from tests.orders_api.conftest import order_placed

pytestmark = pytest.mark.django_db(transaction=True)


class Cleanups:
    """How often channels closed Django's stale connections (each a thread hop)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, **kwargs: Any) -> None:
        self.count += 1
        close_old_connections(**kwargs)


@pytest.fixture
def cleanups(monkeypatch: pytest.MonkeyPatch) -> Cleanups:
    seen = Cleanups()
    monkeypatch.setattr(channels.db, "close_old_connections", seen)
    return seen


async def _follow(ws_url: str, pushed: dict[str, Any]) -> list[dict[str, Any]]:
    """Open the order's socket, take its first state, push one state through the
    channel layer as the orders-worker does, then leave: the messages sent."""
    path, _, query = ws_url.partition("?")
    scope = {
        "type": "websocket",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [(b"host", b"127.0.0.1"), (b"origin", b"http://127.0.0.1")],
        "subprotocols": [],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8002),
    }
    socket = ApplicationCommunicator(application, scope)
    try:
        await socket.send_input({"type": "websocket.connect"})
        assert (await socket.receive_output(10))["type"] == "websocket.accept"
        sent = [json.loads((await socket.receive_output(10))["text"])]
        order_id = path.rstrip("/").rsplit("/", 1)[1]
        layer = get_channel_layer()
        assert layer is not None
        await layer.group_send(
            broadcast.order_group(order_id), {"type": "order.state", "state": pushed}
        )
        sent.append(json.loads((await socket.receive_output(10))["text"]))
        await socket.send_input({"type": "websocket.disconnect", "code": 1000})
        await socket.wait(10)
        return sent
    finally:
        lane_database().discard()


def test_an_order_socket_is_followed_without_a_thread_hop(cleanups: Cleanups) -> None:
    # Given an order placed through the API
    placed = order_placed()
    cleanups.count = 0

    # When its buyer follows it by websocket while its state changes once
    pushed = {"id": placed["id"], "status": "allocated"}
    sent = asyncio.run(_follow(placed["ws_url"], pushed))

    # Then the socket sent the first state, then the pushed one
    assert sent[0]["type"] == "order.state"
    assert sent[0]["state"]["id"] == placed["id"]
    assert sent[0]["state"]["status"] == "accepted"
    assert sent[1] == {"type": "order.state", "state": pushed}
    # and channels never left the loop to close stale connections
    assert cleanups.count == 0
