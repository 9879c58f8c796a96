"""The lean accept's rows in ONE statement: the order, its outbox event and, with an
Idempotency-Key, the key's stored answer.

Through the ORM they were three `INSERT`s, each a model save and a round trip: with
the transaction's `BEGIN` and `COMMIT`, most of the accept's PostgreSQL cost. The
rows are built as the long way builds them (ordering/services.py order_row_new,
accepted_envelope; the key as ordering/idempotency.py stores a completed one); the
caller's transaction commits them with its counter check, or none of them. A key the
database holds already, or an order number taken, fails the statement: nothing is
written, and the caller goes the long way.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection

from common.tracing import trace_carrier
from orders_api.admission.accept import KeyRef
from orders_api.models import IdempotencyKey, Order
from orders_api.ordering.services import accepted_envelope

ACCEPT_ROWS_SQL = """
WITH placed AS (
    INSERT INTO "orders_api_order" (id, number, sale_id, sku, name, unit_price,
        quantity, total, email, status, access_token_hash, trace_id, tallied,
        units_released, created_at, updated_at)
    VALUES (%(order_id)s, %(number)s, %(sale_id)s, %(sku)s, %(name)s,
        %(unit_price)s, %(quantity)s, %(total)s, %(email)s, %(status)s,
        %(token_hash)s, %(trace_id)s, false, false, %(now)s, %(now)s)
    RETURNING id
), logged AS (
    INSERT INTO "orders_api_event" (id, type, source, time, trace_id, version, data,
        order_id, recorded_at, applied, outbox_pending, publish_count, trace_context)
    SELECT %(event_id)s, %(type)s, %(source)s, %(time)s, %(trace_id)s, %(version)s,
        %(data)s::jsonb, placed.id, %(now)s, true, true, 0, %(trace_context)s::jsonb
    FROM placed
    RETURNING id
)
INSERT INTO "orders_api_idempotencykey" (scope, client, key, fingerprint, status,
    claim, lease_expires_at, response_status, response_body, created_at, expires_at)
SELECT %(scope)s, %(client)s, %(key)s, %(fingerprint)s, %(completed)s, '', NULL,
    202, %(body)s::jsonb, %(now)s, %(expires_at)s
FROM logged WHERE %(with_key)s
"""


def accept_rows_insert(params: dict[str, Any]) -> None:
    """Write the rows (inside the caller's transaction). Raises IntegrityError."""
    with connection.cursor() as cursor:
        cursor.execute(ACCEPT_ROWS_SQL, params)


def accept_rows_params(
    *, order: Order, key: KeyRef | None, body: dict[str, Any], trace_id: str
) -> dict[str, Any]:
    """The statement's parameters for a new order (ordering/services.py
    order_row_new) and its stored answer: plain values any psycopg connection takes
    (the ASGI fast lane's own, web/fast_accept.py, as well as Django's)."""
    envelope = accepted_envelope(order=order, trace_id=trace_id)
    now = order.created_at
    expires_at = now + timedelta(seconds=settings.ORDERS_IDEMPOTENCY_TTL_SECONDS)
    return {
        "order_id": order.pk,
        "number": order.number,
        "sale_id": order.sale_id,
        "sku": order.sku,
        "name": order.name,
        "unit_price": order.unit_price,
        "quantity": order.quantity,
        "total": order.total,
        "email": order.email,
        "status": str(order.status),
        "token_hash": order.access_token_hash,
        "trace_id": order.trace_id,
        "now": now,
        "event_id": envelope.id,
        "type": envelope.type,
        "source": envelope.source,
        "time": envelope.time,
        "version": envelope.version,
        "data": json.dumps(envelope.data),
        # The relay publishes inside this request's trace (outbox/relay.py).
        "trace_context": json.dumps(trace_carrier()),
        "with_key": key is not None,
        "scope": key.scope if key else "",
        "client": key.client if key else "",
        "key": key.key if key else "",
        "fingerprint": key.fingerprint if key else "",
        "completed": IdempotencyKey.Status.COMPLETED.value,
        "body": json.dumps(body),
        "expires_at": expires_at,
    }
