"""The one event contract of the stack: envelope, types, task and queue names.

    {"id", "type", "source", "time", "trace_id", "version": 1, "data"}

Types are named `service.thing-happened`. Events travel as the single argument of a
Celery task sent BY NAME on a queue, so no service imports another's code: the
orders service publishes `orders.*` to the fulfillment queue, the fulfillment worker
publishes `fulfillment.*` back to the orders' events queue (`route_for`). Every
publisher has the one `Publisher` signature.

A message's argument may also be a BATCH: a list of envelopes, each consumed as if it
had come alone, in order (one message, one task, one round trip for several events:
the relay bundles untraced accepted orders, the fulfillment worker reports one
order's end and the next one's start together).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeGuard

from django.conf import settings

from common.errors import InvalidEvent
from common.tracing.core import current_trace_id, message_publishing

ORDER_ACCEPTED = "orders.order-accepted"
ORDER_STARTED = "fulfillment.order-started"
ORDER_FULFILLED = "fulfillment.order-fulfilled"
ORDER_FAILED = "fulfillment.order-failed"
FULFILLMENT_TYPES = frozenset({ORDER_STARTED, ORDER_FULFILLED, ORDER_FAILED})

ORDERS_SOURCE = "orders"
FULFILLMENT_SOURCE = "fulfillment"
VERSION = 1
ENVELOPE_KEYS = frozenset(
    {"id", "type", "source", "time", "trace_id", "version", "data"}
)
TRACE_ID_PATTERN = re.compile(r"[0-9a-f]{32}")
_TYPE = re.compile(r"[a-z]+(-[a-z]+)*\.[a-z]+(-[a-z]+)*")

# The task consuming each side's events (sent by name) and the default queues
# (settings FULFILLMENT_QUEUE and ORDERS_EVENTS_QUEUE may rename them).
HANDLE_ORDER_ACCEPTED = "fulfillment.handle_order_accepted"
HANDLE_FULFILLMENT_EVENT = "orders.handle_fulfillment_event"
FULFILLMENT_QUEUE = "fulfillment"
ORDERS_EVENTS_QUEUE = "orders-events"

# Beside an envelope in a bundle of accepted orders (a list: one message for
# several purchases), the W3C context of its purchase's trace when that trace is
# sampled: the message's own headers carry one trace only (the relay, the
# fulfillment worker; docs/decisions/0011-sampled-orders-bundled.md).
BUNDLED_TRACE_KEY = "trace_context"

# Span attributes naming the event a span published or applied (the trace reader
# finds the strangler purchase's last step by them).
EVENT_ID_ATTRIBUTE = "orders.event.id"
EVENT_TYPE_ATTRIBUTE = "orders.event.type"


# One envelope, or a batch of them (the module docstring).
Payload = dict[str, Any] | list[dict[str, Any]]


class Publisher(Protocol):
    """Sends `envelope` (or a batch) as the one argument of the task named `task` on
    `queue`."""

    def __call__(self, *, task: str, envelope: Payload, queue: str) -> None: ...


class _CeleryApp(Protocol):
    def send_task(
        self, name: str, *, args: list[Any], queue: str, argsrepr: str, kwargsrepr: str
    ) -> Any: ...


def celery_publisher(app: _CeleryApp) -> Publisher:
    """The Publisher of a service's Celery app."""

    def publish(*, task: str, envelope: Payload, queue: str) -> None:
        # By name, on a queue: the consumer's code is never imported here. The
        # message's printable arguments are a short summary: Celery's own (a
        # `saferepr` of every envelope) cost more than the rest of a publish.
        with message_publishing():  # its Redis LPUSH is not recorded
            app.send_task(
                task,
                args=[envelope],
                queue=queue,
                argsrepr=payload_summary(envelope),
                kwargsrepr="{}",
            )

    return publish


def payload_summary(envelope: Payload) -> str:
    """`[<type> <id>]`, or `[<n> events: <type> <id>, ...]` for a batch."""
    batch = envelope if isinstance(envelope, list) else [envelope]
    named = ", ".join(f"{e.get('type')} {e.get('id')}" for e in batch)
    return f"[{named}]" if len(batch) == 1 else f"[{len(batch)} events: {named}]"


@dataclass(frozen=True)
class Envelope:
    id: uuid.UUID
    type: str
    source: str
    time: datetime
    trace_id: str
    version: int
    data: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "type": self.type,
            "source": self.source,
            "time": self.time.isoformat(),
            "trace_id": self.trace_id,
            "version": self.version,
            "data": self.data,
        }


def trace_id_new() -> str:
    return uuid.uuid4().hex


def trace_id_valid(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(TRACE_ID_PATTERN.fullmatch(value))


def trace_id_from(traceparent: str | None) -> str:
    """The trace id of a W3C `traceparent` header, else a new one."""
    if traceparent:
        parts = traceparent.strip().split("-")
        if len(parts) == 4 and trace_id_valid(parts[1]) and set(parts[1]) != {"0"}:
            return parts[1]
    return trace_id_new()


def trace_id_of_request(traceparent: str | None) -> str:
    """The trace the request runs in: its span's (a hostile or malformed header
    started a new one), else, with tracing off, the header's or a new id."""
    return current_trace_id() or trace_id_from(traceparent)


def envelope_new(
    *,
    type_: str,
    source: str,
    data: dict[str, Any],
    trace_id: str,
    event_id: uuid.UUID | None = None,
) -> Envelope:
    """A new event; `event_id` when the same step must always give the same id."""
    return Envelope(
        id=event_id or uuid.uuid4(),
        type=type_,
        source=source,
        time=datetime.now(UTC),
        trace_id=trace_id,
        version=VERSION,
        data=data,
    )


def _envelope_check(raw: dict[str, Any]) -> None:
    if raw["version"] != VERSION or isinstance(raw["version"], bool):
        raise InvalidEvent(f"Only version {VERSION} events are understood.")
    if not isinstance(raw["type"], str) or not _TYPE.fullmatch(raw["type"]):
        raise InvalidEvent("type must be `service.thing-happened`.")
    if not trace_id_valid(raw["trace_id"]):
        raise InvalidEvent("trace_id must be 32 lower-case hex digits.")
    if not isinstance(raw["source"], str) or not isinstance(raw["data"], dict):
        raise InvalidEvent("source must be a string and data an object.")


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
    _envelope_check(raw)
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
