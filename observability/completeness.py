"""Whether each purchase of a sale left one complete trace (`traces sale`).

The edge traces every purchase (its behaviours say `trace = 1`) and every process
behind it follows, so a purchase that was answered must have one trace holding a
span of each process it went through:

- legacy: the edge, the shop, the warehouse;
- strangler: the edge, the orders service, the outbox relay, the fulfillment
  worker, the warehouse.

A trace that lacks one of them, holds a span whose parent is not in it (other than
the visitor's own, above the edge), or holds more than one purchase (a visitor's
trace id used twice) is incomplete: sampling or propagation broke somewhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from observability.model import Trace

REQUIRED_SERVICES = {
    "legacy": ("edge", "shop", "warehouse"),
    "strangler": (
        "edge",
        "orders-api",
        "outbox-relay",
        "fulfillment-worker",
        "warehouse",
    ),
}


def trace_gaps(trace: Trace, *, edge: bool = True) -> list[str]:
    """What a purchase's trace lacks; [] when it is complete. `edge=False` for a
    purchase placed straight at a service (a test): no edge span expected."""
    gaps = [
        f"no {service} span"
        for service in REQUIRED_SERVICES[trace.path]
        if service not in trace.services and (edge or service != "edge")
    ]
    # The visitor's own parent (a traceparent it sent) is above the first span.
    visitor = {trace.root.parent_id}
    orphans = trace.missing_parents() - visitor
    if orphans:
        gaps.append(f"{len(orphans)} span(s) whose parent is missing")
    entries = [s for s in trace.spans if s.service == "edge" and s.kind == "server"]
    if len(entries) > 1:
        gaps.append(f"{len(entries)} edge requests in one trace")
    return gaps


@dataclass
class Completeness:
    """How many purchases have a complete trace, and what the others lack."""

    complete: int = 0
    incomplete: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.incomplete

    def as_dict(self) -> dict[str, object]:
        return {
            "complete": self.complete,
            "incomplete": len(self.incomplete),
            "gaps": self.incomplete,
        }


def purchases_completeness(
    purchases: Iterable[Trace], *, edge: bool = True
) -> Completeness:
    """Each answered purchase's trace checked by `trace_gaps`."""
    result = Completeness()
    for trace in purchases:
        gaps = trace_gaps(trace, edge=edge)
        if gaps:
            result.incomplete[trace.trace_id] = gaps
        else:
            result.complete += 1
    return result
