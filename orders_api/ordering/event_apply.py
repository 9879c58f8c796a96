"""A fulfillment event that moves an order on (started, fulfilled), in ONE statement.

Two of an order's three events from the queue are these, and each was a transaction
of six round trips (lock the order, look for the event, update, insert, begin,
commit) through the ORM: most of the orders-worker's CPU. Here one statement, in
autocommit, does what life_cycle.fulfillment_event_record does for them:

- the order moves to the event's status only from a status the transition table
  allows (the UPDATE's WHERE; a row another transaction holds is re-read after it
  commits, as PostgreSQL does for any UPDATE);
- the event is logged beside it, `applied` saying whether it moved;
- a duplicate (the event id logged already) fails the INSERT, and with it the whole
  statement: nothing changes, the caller answers "duplicate";
- an unknown order matches no row: nothing is written.

A batch of events of one type for different orders (what the fulfillment worker
sends) takes one statement for all (`orders_events_apply`). A failed order gives its
units back (sales/returns.py) and takes the ORM's way.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import connection
from django.utils import timezone

from common.events import Envelope
from common.tracing import trace_carrier
from orders_api.models import Order, Sale

_APPLY = """
WITH changed AS (
    UPDATE "orders_api_order" SET status = %(target)s, updated_at = %(now)s
    WHERE number = %(number)s AND status = ANY(%(sources)s)
    RETURNING id, status, updated_at
), target AS (
    SELECT o.id, o.number, o.status, o.updated_at, o.quantity, o.name, o.sale_id,
           s.slug
    FROM "orders_api_order" o JOIN "orders_api_sale" s ON s.id = o.sale_id
    WHERE o.number = %(number)s
), logged AS (
    INSERT INTO "orders_api_event" (id, type, source, time, trace_id, version, data,
        order_id, recorded_at, applied, outbox_pending, publish_count, trace_context)
    SELECT %(id)s, %(type)s, %(source)s, %(time)s, %(trace_id)s, %(version)s,
        %(data)s::jsonb, target.id, %(now)s, EXISTS (SELECT 1 FROM changed), false,
        0, %(trace_context)s::jsonb
    FROM target
    RETURNING applied
)
SELECT t.id, t.number, COALESCE(c.status, t.status),
       COALESCE(c.updated_at, t.updated_at), t.quantity, t.name, t.sale_id, t.slug,
       l.applied
FROM target t CROSS JOIN logged l LEFT JOIN changed c ON c.id = t.id
"""


def order_event_apply(
    *, envelope: Envelope, target: str, sources: frozenset[str]
) -> tuple[Order, bool] | None:
    """Log the event and move its order to `target` if it is in one of `sources`.

    Returns the order as it now is (enough of it to push: its state and its sale's
    slug) and whether the event moved it; None for an unknown order. Raises
    IntegrityError, changing nothing, when the event was logged before.
    """
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _APPLY,
            {
                "target": target,
                "now": now,
                "number": envelope.data["order_number"],
                "sources": sorted(sources),
                "id": envelope.id,
                "type": envelope.type,
                "source": envelope.source,
                "time": envelope.time,
                "trace_id": envelope.trace_id,
                "version": envelope.version,
                "data": json.dumps(envelope.data),
                "trace_context": json.dumps(trace_carrier()),
            },
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return _order_of(row), bool(row[8])


# The same for a batch of events of one type, each of another order (the
# fulfillment worker's "started" of a batch, its "fulfilled" ones): one statement.
_APPLY_MANY = """
WITH input AS (
    SELECT * FROM unnest(%(numbers)s::text[], %(ids)s::uuid[],
        %(times)s::timestamptz[], %(trace_ids)s::text[], %(datas)s::jsonb[])
        AS i(number, id, time, trace_id, data)
), changed AS (
    UPDATE "orders_api_order" o SET status = %(target)s, updated_at = %(now)s
    FROM input i
    WHERE o.number = i.number AND o.status = ANY(%(sources)s)
    RETURNING o.id, o.status, o.updated_at
), target AS (
    SELECT o.id, o.number, o.status, o.updated_at, o.quantity, o.name, o.sale_id,
           s.slug, i.id AS event_id, i.time, i.trace_id, i.data
    FROM input i JOIN "orders_api_order" o ON o.number = i.number
    JOIN "orders_api_sale" s ON s.id = o.sale_id
), logged AS (
    INSERT INTO "orders_api_event" (id, type, source, time, trace_id, version, data,
        order_id, recorded_at, applied, outbox_pending, publish_count, trace_context)
    SELECT t.event_id, %(type)s, %(source)s, t.time, t.trace_id, %(version)s,
        t.data, t.id, %(now)s, EXISTS (SELECT 1 FROM changed c WHERE c.id = t.id),
        false, 0, %(trace_context)s::jsonb
    FROM target t
    RETURNING order_id, applied
)
SELECT t.id, t.number, COALESCE(c.status, t.status),
       COALESCE(c.updated_at, t.updated_at), t.quantity, t.name, t.sale_id, t.slug,
       l.applied
FROM target t JOIN logged l ON l.order_id = t.id LEFT JOIN changed c ON c.id = t.id
"""


def orders_events_apply(
    *, envelopes: list[Envelope], target: str, sources: frozenset[str]
) -> dict[str, tuple[Order, bool]]:
    """`order_event_apply` for events of one type, source and version, each of
    another order, in one statement: order number → (the order as it now is,
    whether its event moved it). An unknown order's number is missing. Raises
    IntegrityError, changing nothing, when any of the events was logged before.
    """
    first = envelopes[0]
    numbers = [envelope.data["order_number"] for envelope in envelopes]
    if len(set(numbers)) != len(numbers) or any(
        (e.type, e.source, e.version) != (first.type, first.source, first.version)
        for e in envelopes
    ):
        raise ValueError("a batch of events of one type, each of another order")
    with connection.cursor() as cursor:
        cursor.execute(
            _APPLY_MANY,
            {
                "numbers": numbers,
                "ids": [envelope.id for envelope in envelopes],
                "times": [envelope.time for envelope in envelopes],
                "trace_ids": [envelope.trace_id for envelope in envelopes],
                "datas": [json.dumps(envelope.data) for envelope in envelopes],
                "target": target,
                "now": timezone.now(),
                "sources": sorted(sources),
                "type": first.type,
                "source": first.source,
                "version": first.version,
                "trace_context": json.dumps(trace_carrier()),
            },
        )
        rows = cursor.fetchall()
    return {row[1]: (_order_of(row), bool(row[8])) for row in rows}


def _order_of(row: Any) -> Order:
    order_id, number, status, updated_at, quantity, name, sale_id, slug = row[:8]
    order = Order(
        id=order_id,
        number=number,
        status=status,
        updated_at=updated_at,
        quantity=quantity,
        name=name,
        sale_id=sale_id,
    )
    # Only what a push reads of the sale (broadcast.orders_push: its board's slug).
    order.sale = Sale(id=sale_id, slug=slug)
    return order
