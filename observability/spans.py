"""A span as the trace reader sees it, and the names it sorts spans by: the kinds,
the segments of a purchase's time, the services each segment belongs to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from common.events import ORDER_FULFILLED

KIND_NAMES = {0: "unspecified", 1: "internal", 2: "server", 3: "client"}
KIND_NAMES |= {4: "producer", 5: "consumer"}
STATUS_NAMES = {0: "unset", 1: "ok", 2: "error"}

# Segments in the order a purchase meets them; labels as the report shows them.
SEGMENTS: tuple[tuple[str, str], ...] = (
    ("edge", "edge"),
    ("view", "shop / orders view"),
    ("db", "DB (PostgreSQL)"),
    ("redis", "Redis"),
    ("warehouse", "warehouse wait"),
    ("outbox", "outbox (answer → relay publish)"),
    ("queue", "queue wait (publish → task start)"),
    ("worker", "worker"),
    ("other", "other"),
)
SEGMENT_LABELS = dict(SEGMENTS)
SERVICE_SEGMENTS = {
    "edge": "edge",
    "shop": "view",
    "orders-api": "view",
    "fulfillment-worker": "worker",
    "orders-worker": "worker",
    "outbox-relay": "outbox",
    "warehouse": "warehouse",
}
WAREHOUSE_SERVICE = "warehouse"
OUTBOX_SERVICE = "outbox-relay"
STRANGLER_SERVICE = "orders-api"
# The orders worker names on its task's span the event it applied: this one is the
# strangler purchase's last step (the order is fulfilled for the customer to see).
FULFILLED_EVENT = ORDER_FULFILLED
# The warehouse's API path: a call to it counts as warehouse wait even when the
# warehouse itself sent no spans.
WAREHOUSE_API_PATH = "/fulfilments/"


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: str
    service: str
    start_ns: int
    end_ns: int
    attributes: Mapping[str, Any] = field(default_factory=dict)
    resource: Mapping[str, Any] = field(default_factory=dict)
    status: str = "unset"
    links: tuple[tuple[str, str], ...] = ()
    scope: str = ""
    trace_state: str = ""

    @property
    def duration_ns(self) -> int:
        return max(0, self.end_ns - self.start_ns)

    def attribute(self, *names: str) -> Any:
        """The first of `names` set on the span (old and new semantic conventions)."""
        for name in names:
            if name in self.attributes:
                return self.attributes[name]
        return None

    @property
    def db_system(self) -> str:
        return str(self.attribute("db.system.name", "db.system") or "")

    @property
    def http_method(self) -> str:
        return str(self.attribute("http.request.method", "http.method") or "")

    @property
    def http_target(self) -> str:
        value = self.attribute("url.path", "http.target")
        if value:
            return str(value).split("?", 1)[0]
        full = str(self.attribute("url.full", "http.url") or "")
        if "://" in full:
            return "/" + full.split("://", 1)[1].partition("/")[2].split("?", 1)[0]
        return ""

    @property
    def http_status(self) -> int | None:
        value = self.attribute("http.response.status_code", "http.status_code")
        try:
            return int(value) if value is not None else None
        except (TypeError, ValueError):
            return None

    @property
    def label(self) -> str:
        if self.db_system:
            # A Redis pipeline's statement has a line per command: one line here.
            statement = " ".join(
                str(self.attribute("db.statement", "db.query.text") or "").split()
            )
            if statement.upper().startswith(self.name.upper()):
                return statement[:80]
            return f"{self.name} {statement[:80]}".strip()
        if self.kind == "client" and self.http_target:
            return f"{self.http_method or self.name} {self.http_target}"
        if self.kind == "server" and self.http_target:
            return f"{self.http_method} {self.http_target}".strip()
        return self.name
