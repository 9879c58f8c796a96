"""The event log: every event this service emits or receives, in its envelope."""

from __future__ import annotations

from common.events import Envelope
from common.tracing import trace_carrier
from orders_api.models import Event, Order


def event_log_write(
    *,
    envelope: Envelope,
    order: Order,
    applied: bool = True,
    outbox_pending: bool = False,
) -> Event:
    """Log an event of `order`; `outbox_pending` makes the relay publish it.

    The current trace context is stored beside it: the relay's first publish of an
    accepted order continues the request's trace, and a replay links back to it.
    """
    return Event.objects.create(
        id=envelope.id,
        type=envelope.type,
        source=envelope.source,
        time=envelope.time,
        trace_id=envelope.trace_id,
        version=envelope.version,
        data=envelope.data,
        order=order,
        applied=applied,
        outbox_pending=outbox_pending,
        trace_context=trace_carrier(),
    )
