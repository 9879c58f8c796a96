"""Websockets: an order's live status, and the sale board.

A client that connects late gets the current state first, then every change.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import psycopg
from asgiref.typing import WebSocketDisconnectEvent
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from common.errors import ApplicationError, NotFound
from orders_api.live import broadcast
from orders_api.ordering.clients import ORDERS_SESSION_KEY
from orders_api.ordering.presentation import order_state
from orders_api.ordering.selectors import order_get_visible
from orders_api.sales.selectors import sale_board, sale_current
from orders_api.web.order_reads import order_visible_on_loop

# Close codes before accept become an HTTP 403 on the handshake; after, these.
CLOSE_CODES = {401: 4401, 403: 4403, 404: 4404}


def _order_state(order_id: str, token: str | None, sessions: list[str]) -> dict:
    order = order_get_visible(order_id=order_id, token=token, session_orders=sessions)
    return order_state(order=order)


async def _order_state_now(
    order_id: str, token: str | None, sessions: list[str]
) -> dict:
    """The order's state for its owner: on the event loop (web/order_reads.py), or
    with ORDERS_LOOP_READS off on asgiref's thread, as a database read as the
    status page's."""
    if not settings.ORDERS_LOOP_READS:
        return await database_sync_to_async(_order_state)(order_id, token, sessions)
    try:
        order = await order_visible_on_loop(
            order_id=order_id, token=token, session_orders=sessions
        )
    except psycopg.Error:
        raise NotFound("No such order.") from None
    return order_state(order=order)


def _board_state(slug: str) -> dict[str, Any] | None:
    sale = sale_current(slug=slug)
    return None if sale is None else sale_board(sale=sale)


class LoopConsumer(AsyncJsonWebsocketConsumer):
    """A consumer whose messages are handled on the event loop alone.

    channels closes Django's stale database connections around every message a
    consumer handles (`aclose_old_connections`): a hop to asgiref's one thread per
    process and back, for each connect, each pushed state and each disconnect,
    though these consumers use no Django connection on the loop. In a flash sale
    that was hundreds of hops a second queued on that one thread. Their database
    reads are on the loop's own connections (web/order_reads.py) or inside
    `database_sync_to_async`, which closes stale connections on its thread itself.
    """

    async def dispatch(self, message: dict[str, Any]) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_disconnect(self, message: WebSocketDisconnectEvent) -> None:
        for group in self.groups:
            await self.channel_layer.group_discard(group, self.channel_name)
        await self.disconnect(message["code"])
        raise StopConsumer()


class OrderStatusConsumer(LoopConsumer):
    group: str | None = None

    async def connect(self) -> None:
        order_id = str(self.scope["url_route"]["kwargs"]["order_id"])
        query = parse_qs(self.scope.get("query_string", b"").decode())
        tokens = query.get("token")
        token = tokens[0] if tokens else None
        session = self.scope.get("session")
        held = session.get(ORDERS_SESSION_KEY, []) if session else []
        sessions = [str(i) for i in held]
        # Join first, then read: no change can fall between the two.
        self.group = broadcast.order_group(order_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        try:
            state = await _order_state_now(order_id, token, sessions)
        except ApplicationError as error:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None
            await self.close(code=CLOSE_CODES.get(error.status_code, 4400))
            return
        await self.accept()
        await self.send_json({"type": "order.state", "state": state})

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Clients only listen; anything they send is ignored."""

    async def order_state(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "order.state", "state": event["state"]})


class SaleBoardConsumer(LoopConsumer):
    group: str | None = None

    async def connect(self) -> None:
        slug = self.scope["url_route"]["kwargs"]["slug"]
        self.group = broadcast.sale_group(slug)
        await self.channel_layer.group_add(self.group, self.channel_name)
        board = await database_sync_to_async(_board_state)(slug)
        if board is None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None
            await self.close(code=4404)
            return
        await self.accept()
        await self.send_json({"type": "board.state", "board": board})

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Clients only listen."""

    async def board_state(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "board.state", "board": event["board"]})
