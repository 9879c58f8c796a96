"""One message, several traces: the items of a bundle (the relay's accepted orders,
up to ORDERS_RELAY_BUNDLE a message) each carry their purchase's context beside
them (common.events.BUNDLED_TRACE_KEY); the consumer does each item's work in it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

from common.tracing.core import (
    carrier_sampled,
    current_trace_id,
    span_from_carrier,
    untraced,
)


def carrier_trace_id(carrier: Mapping[str, str] | None) -> str:
    """The 32-hex trace id a stored context (trace_carrier) names, or ""."""
    parts = (carrier or {}).get("traceparent", "").strip().split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else ""


@contextmanager
def bundled_trace(
    name: str,
    carrier: Mapping[str, str] | None,
    *,
    attributes: Mapping[str, str | int | float | bool] | None = None,
) -> Iterator[bool]:
    """The work for one item of a message that carries several (a bundle of
    orders), in the item's own trace: its stored context (`carrier`) says which.

    A sampled trace other than the current one (the message's): a CONSUMER span
    `name` continuing it, and True. A trace not sampled: untraced, so nothing of
    this item lands in the message's trace. No carrier, or the message's own
    trace: the current context as it is (the message's consumer span).
    """
    if not carrier or not isinstance(carrier, Mapping):
        yield False
    elif not carrier_sampled(carrier):
        with untraced():
            yield False
    elif carrier_trace_id(carrier) == current_trace_id():
        yield False
    else:
        with span_from_carrier(
            name, carrier, kind=trace.SpanKind.CONSUMER, attributes=attributes
        ):
            yield True


@contextmanager
def carrier_context(carrier: Mapping[str, str] | None) -> Iterator[None]:
    """The stored context made current, no span of its own (a message sent again
    for one item of a bundle goes on in that item's trace)."""
    if not carrier or not isinstance(carrier, Mapping):
        yield
        return
    token = otel_context.attach(propagate.extract(dict(carrier)))
    try:
        yield
    finally:
        otel_context.detach(token)
