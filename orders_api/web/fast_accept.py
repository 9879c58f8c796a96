"""The plain accept, whole, on the event loop: no thread, no Django handler.

The fast lane (web/fast_lane.py) has asked Redis already: the units are admitted.
What the view's lean accept (ordering/accept.py) does next is done here the same
way, on the event loop, with the same rows and the same answer:

    PostgreSQL: one transaction on a connection of the lane's own (async psycopg):
        the order, its outbox event and the key's stored answer in ONE statement
        (ordering/accept_rows.py), sent with its BEGIN in one round trip (pipeline
        mode) while the counter's generation is read from Redis; COMMIT if that
        generation is the admission's.
    The 202, with the order's access token on its links.
    Redis, after the 202: the key marked accepted, the relay woken (accept_done).

Why: in a flash sale the orders service's one CPU also runs the queue's consumers.
Through Django every accept took a thread of the pool, and each of its waits
(Redis, PostgreSQL, the loop sending its answer) meant winning the interpreter back
from the other threads (docs/results/2026-12-06-event-loop-accept.md).

A counter rebuilt under the request or a key the database holds already goes the
long way: the units are given back and Django decides, exactly as before. A request
the edge sampled gets a server span of the orders service (the name and
attributes of Django's, web/lane_http.py), with psycopg's and Redis's spans under it,
and the relay publishes inside it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
import redis.asyncio as aioredis
from django.conf import settings
from django.db import connections
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from psycopg import pq
from psycopg.rows import dict_row

from common import events
from common.tracing import span_in_trace
from orders_api.admission import accept as redis_accept
from orders_api.admission.keys import counter_key, outbox_kick_key
from orders_api.models import Sale
from orders_api.ordering.accept_rows import ACCEPT_ROWS_SQL, accept_rows_params
from orders_api.ordering.presentation import links_with_token, order_accepted_body
from orders_api.ordering.selectors import order_access_token
from orders_api.ordering.services import order_row_new
from orders_api.sales.selectors import sale_snapshot_held, sale_snapshot_keep

# The accept's log line is the view's (ordering/accept.py): `traces show` finds each
# accept in the orders log by it.
logger = logging.getLogger("orders_api.ordering.accept")

# The view's route (orders_api/urls.py): the span's name and `http.route`.
ROUTE = "api/orders/"

# Sale._meta.db_table's row, whole: Sale(**row) makes the model of it.
_SALE_SQL = 'SELECT * FROM "orders_api_sale" WHERE id = %s'

# Django's settings_dict OPTIONS that are Django's, not libpq's.
_DJANGO_OPTIONS = frozenset(
    {"pool", "server_side_binding", "isolation_level", "assume_role", "context"}
)


class LongWay(Exception):
    """Not the common case (a rebuilt counter, a key or number the database holds,
    a database that failed): the caller gives the units back and Django decides."""


class LaneDatabase:
    """A few PostgreSQL connections of the lane's own, per event loop.

    At most `size` accepts of one process hold a connection at once; the others
    wait their turn on the loop (each holds it for one short transaction). A
    connection left in a transaction, or broken, is closed rather than kept.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._free: list[psycopg.AsyncConnection[Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots = asyncio.Semaphore(size)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self.discard()
            self._loop, self._slots = loop, asyncio.Semaphore(self._size)
        async with self._slots:
            conn = self._free.pop() if self._free else await self._connect()
            try:
                yield conn
            finally:
                if (
                    conn.closed
                    or conn.info.transaction_status != pq.TransactionStatus.IDLE
                ):
                    await conn.close()
                else:
                    self._free.append(conn)

    async def warm(self, count: int) -> None:
        """Open `count` connections now, on this loop (a server's start-up), so the
        first accepts of a sale do not each wait for one."""
        self._loop, self._slots = (
            asyncio.get_running_loop(),
            asyncio.Semaphore(self._size),
        )
        fresh = await asyncio.gather(
            *(self._connect() for _ in range(min(count, self._size) - len(self._free)))
        )
        self._free.extend(fresh)

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(
            **database_params(), autocommit=True
        )

    def discard(self) -> None:
        """Close every idle connection now (they belong to another loop, or the app
        is done: OrderFastLane.aclose)."""
        while self._free:
            self._free.pop().pgconn.finish()


_lane_database: LaneDatabase | None = None


def lane_database() -> LaneDatabase:
    """This process's LaneDatabase, for the lanes and the websockets' first state."""
    global _lane_database
    if _lane_database is None:
        _lane_database = LaneDatabase(settings.ORDERS_LOOP_ACCEPT_CONNECTIONS)
    return _lane_database


def database_params() -> dict[str, Any]:
    """libpq's parameters for the orders database, from Django's settings (its test
    database under the tests)."""
    config = connections["default"].settings_dict
    params: dict[str, Any] = {
        "dbname": config["NAME"],
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
        "host": config.get("HOST") or None,
        "port": config.get("PORT") or None,
    }
    options = config.get("OPTIONS") or {}
    params.update({k: v for k, v in options.items() if k not in _DJANGO_OPTIONS})
    return {k: v for k, v in params.items() if v is not None}


async def order_accept_on_loop(
    *,
    verdict: redis_accept.AcceptVerdict,
    slug: str,
    quantity: int,
    email: str,
    traceparent: str | None,
    key: redis_accept.KeyRef,
    redis: aioredis.Redis,
    database: LaneDatabase,
    give_back: Callable[[], Awaitable[None]],
) -> dict[str, Any]:
    """The admitted order written and answered: the 202's body (with the access
    token). Raises LongWay: Django decides.

    The admitted units are given back (`give_back`) only when nothing was written
    for sure: a rollback, or a failure before the commit was sent. A commit whose
    fate is unknown (the connection lost, the task cancelled while it ran) keeps
    them: a unit held for nothing is healed by the relay's reconcile once the sale
    is quiet, a unit given back for an order that was written would be sold twice.
    """
    committing = False
    try:
        async with database.connection() as conn:
            sale = await _sale_snapshot(conn, verdict.sale_id)
            if sale is None:
                raise LongWay
            trace_id = events.trace_id_of_request(traceparent)
            order = order_row_new(
                order_id=uuid.uuid4(), sale=sale, quantity=quantity, email=email,
                trace_id=trace_id,
            )  # fmt: skip
            body = order_accepted_body(order=order, token=None)
            params = accept_rows_params(
                order=order, key=key, body=body, trace_id=trace_id
            )
            with _rows_span(conn):
                # psycopg's pipeline mode: BEGIN and the rows go in one round trip,
                # the counter's generation is read from Redis meanwhile; COMMIT
                # only if it did not change. Each round trip is a turn of a busy
                # loop in a sale: fewer of them is a faster answer.
                async with conn.pipeline() as pipe, conn.transaction():
                    await conn.execute(ACCEPT_ROWS_SQL, params)
                    generation = asyncio.ensure_future(
                        redis.hget(counter_key(slug), "gen")
                    )
                    try:
                        await pipe.sync()
                    finally:
                        gen = await generation
                    if gen != verdict.generation:
                        raise LongWay  # the block's end rolls back
                    committing = True  # the block's end sends COMMIT
    except LongWay:
        await give_back()
        raise
    except psycopg.Error as error:
        # A key or number the database holds (IntegrityError), or a database that
        # failed: Django's way says which (a replay of what was written, if it was).
        if not committing:
            await give_back()
        raise LongWay from error
    except BaseException:
        if not committing:
            await give_back()
        raise
    logger.info("order %s accepted: %d of %s", order.number, quantity, slug)
    token = order_access_token(order_id=order.pk)
    return links_with_token(body, token=token)


@contextmanager
def _rows_span(conn: psycopg.AsyncConnection[Any]) -> Iterator[None]:
    """One PostgreSQL client span for the accept's transaction, BEGIN to COMMIT
    (psycopg's own spans would time only the statements being queued, in pipeline
    mode, and the generation's HGET runs beside it): the trace's PostgreSQL time,
    in one span instead of three."""
    attributes = {
        "db.system": "postgresql",
        "db.name": conn.info.dbname,
        "db.statement": ACCEPT_ROWS_SQL.strip(),
    }
    with (
        span_in_trace("WITH placed", kind=trace.SpanKind.CLIENT, attributes=attributes),
        suppress_instrumentation(),
    ):
        yield


async def _sale_snapshot(conn: psycopg.AsyncConnection[Any], sale_id: int) -> Any:
    """The sale's snapshot (sales/selectors.py), read once per process: here on the
    loop's own connection the first time (the ORM is not for the event loop)."""
    held = sale_snapshot_held(sale_id=sale_id)
    if held is not None:
        return held
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(_SALE_SQL, (sale_id,))
        row = await cursor.fetchone()
    return sale_snapshot_keep(sale=None if row is None else Sale(**row))


async def accept_done(redis: aioredis.Redis, key: redis_accept.KeyRef) -> None:
    """admission/accept.py accept_done, on the loop: the key marked accepted, the
    relay woken. Called once the 202 is sent: the key's stored answer is committed
    already, so a replay before this finds it in the database (the long way), and a
    Redis that fails here costs a replay that way and the relay its next poll,
    nothing more. Not recorded in the trace (the 202 has gone: it is not on the
    buyer's path), a span fewer a sampled accept."""
    try:
        with suppress_instrumentation():
            await _accept_mark(redis, key)
    except (aioredis.RedisError, OSError):
        logger.warning("accepted order: Redis not told; the relay polls")


async def _accept_mark(redis: aioredis.Redis, key: redis_accept.KeyRef) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        pipe.set(
            key.name,
            key.value(redis_accept.ACCEPTED),
            ex=settings.ORDERS_IDEMPOTENCY_TTL_SECONDS,
        )
        pipe.lpush(outbox_kick_key(), 1)
        await pipe.execute()
