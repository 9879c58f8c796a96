"""An order read on the event loop, for its owner: the status polls
(web/status_lane.py) and each websocket's first state (live/consumers.py).

In a flash sale every buyer follows its order: most by websocket, whose first state
was a read on asgiref's one thread per process, the rest by polling the status API
through Django's thread pool. Here the same primary-key read runs on the lane's own
async connection (web/fast_accept.py LaneDatabase), and the same access check
(ordering/selectors.py order_visibility_check) decides who may see it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg.rows import dict_row

from common.errors import NotFound
from orders_api.models import Order
from orders_api.ordering.selectors import order_visibility_check
from orders_api.web.fast_accept import LaneDatabase, lane_database

# What the status API and the websocket show, and the access token's hash.
_ORDER_SQL = """
SELECT id, number, status, sku, name, quantity, unit_price, total, created_at,
    updated_at, access_token_hash
FROM "orders_api_order" WHERE id = %s
"""


async def order_visible_on_loop(
    *,
    order_id: uuid.UUID | str,
    token: str | None,
    session_orders: Iterable[str],
    database: LaneDatabase | None = None,
) -> Order:
    """The order (those fields only) for its owner's session or the holder of its
    access token. NotFound (404), NotAuthenticated (401), Forbidden (403);
    psycopg.Error when the database fails."""
    try:
        pk = order_id if isinstance(order_id, uuid.UUID) else uuid.UUID(order_id)
    except ValueError:
        raise NotFound("No such order.") from None
    row = await _order_row(database or lane_database(), pk)
    if row is None:
        raise NotFound("No such order.")
    order = Order(**row)
    order_visibility_check(order=order, token=token, session_orders=session_orders)
    return order


async def _order_row(database: LaneDatabase, pk: uuid.UUID) -> dict[str, Any] | None:
    conn: psycopg.AsyncConnection[Any]
    async with (
        database.connection() as conn,
        conn.cursor(row_factory=dict_row) as cursor,
    ):
        await cursor.execute(_ORDER_SQL, (pk,))
        return await cursor.fetchone()
