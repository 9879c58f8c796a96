"""The event envelope every service speaks, and where each event type is sent.

    {"id", "type", "source", "time", "trace_id", "version": 1, "data"}

Types are named `service.thing-happened`. Events travel as the single argument of a
Celery task sent BY NAME, so no service imports another's code.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from common.tracing import current_trace_id
from orders_api.exceptions import InvalidEvent

ORDER_ACCEPTED = "orders.order-accepted"
ORDER_STARTED = "fulfillment.order-started"
ORDER_FULFILLED = "fulfillment.order-fulfilled"
ORDER_FAILED = "fulfillment.order-failed"
FULFILLMENT_TYPES = frozenset({ORDER_STARTED, ORDER_FULFILLED, ORDER_FAILED})

SOURCE = "orders"
VERSION = 1
ENVELOPE_KEYS = frozenset(
    {"id", "type", "source", "time", "trace_id", "version", "data"}
)
_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_TYPE = re.compile(r"[a-z]+(-[a-z]+)*\.[a-z]+(-[a-z]+)*")

# Task name and queue setting of each event type's consumer.
HANDLE_ORDER_ACCEPTED = "fulfillment.handle_order_accepted"
HANDLE_FULFILLMENT_EVENT = "orders.handle_fulfillment_event"


@dataclass(frozen=True)
class Envelope:
    id: uuid.UUID
    type: str
    source: str
    time: datetime
    trace_id: str
    version: int
    data: dict[str, Any]


def trace_id_new() -> str:
    return uuid.uuid4().hex


def trace_id_from(traceparent: str | None) -> str:
    """The trace id of a W3C `traceparent` header, else a new one."""
    if traceparent:
        parts = traceparent.strip().split("-")
        if len(parts) == 4 and _TRACE_ID.fullmatch(parts[1]) and set(parts[1]) != {"0"}:
            return parts[1]
    return trace_id_new()


def trace_id_of_request(traceparent: str | None) -> str:
    """The trace the request runs in: its span's (a hostile or malformed header
    started a new one), else, with tracing off, the header's or a new id."""
    return current_trace_id() or trace_id_from(traceparent)


def envelope_new(*, type_: str, data: dict[str, Any], trace_id: str) -> Envelope:
    return Envelope(
        id=uuid.uuid4(),
        type=type_,
        source=SOURCE,
        time=timezone.now(),
        trace_id=trace_id,
        version=VERSION,
        data=data,
    )


def envelope_parse(raw: Any) -> Envelope:
    """A received envelope, strictly checked; InvalidEvent says what is wrong."""
    if not isinstance(raw, dict):
        raise InvalidEvent("An event must be a JSON object.")
    if set(raw) != ENVELOPE_KEYS:
        raise InvalidEvent(f"An event has exactly the keys {sorted(ENVELOPE_KEYS)}.")
    try:
        event_id = uuid.UUID(str(raw["id"]))
        time = datetime.fromisoformat(str(raw["time"]))
    except ValueError:
        raise InvalidEvent("id must be a UUID and time an ISO 8601 date.") from None
    if raw["version"] != VERSION or isinstance(raw["version"], bool):
        raise InvalidEvent(f"Only version {VERSION} events are understood.")
    if not isinstance(raw["type"], str) or not _TYPE.fullmatch(raw["type"]):
        raise InvalidEvent("type must be `service.thing-happened`.")
    if not isinstance(raw["trace_id"], str) or not _TRACE_ID.fullmatch(raw["trace_id"]):
        raise InvalidEvent("trace_id must be 32 lower-case hex digits.")
    if not isinstance(raw["source"], str) or not isinstance(raw["data"], dict):
        raise InvalidEvent("source must be a string and data an object.")
    if time.tzinfo is None:
        raise InvalidEvent("time must carry a UTC offset.")
    return Envelope(
        id=event_id,
        type=raw["type"],
        source=raw["source"],
        time=time,
        trace_id=raw["trace_id"],
        version=VERSION,
        data=raw["data"],
    )


def route_for(event_type: str) -> tuple[str, str]:
    """(task name, queue) that consumes events of this type."""
    if event_type.startswith("orders."):
        return HANDLE_ORDER_ACCEPTED, settings.FULFILLMENT_QUEUE
    if event_type.startswith("fulfillment."):
        return HANDLE_FULFILLMENT_EVENT, settings.ORDERS_EVENTS_QUEUE
    raise InvalidEvent(f"No consumer for events of type {event_type!r}.")
