"""What faults there are: their names, values and limits, and a fault in force.

The catalogue (`FAULTS`: name -> FaultSpec), the processes `faults kill` may name
(`KILLABLE`), a `Fault` as kept in Redis, and the checks every switch goes through;
a bad name, value or TTL is a `FaultError` naming what is allowed. common/faults.py
re-exports all of it: import it from there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_TTL_SECONDS = 3600.0
FaultValue = int | float | bool


class FaultError(ValueError):
    """A fault name or value the catalogue does not allow; the message says which."""


def _number(
    kind: Callable[[str], Any], low: float, high: float, unit: str
) -> Callable[[str], FaultValue]:
    def parse(raw: str) -> FaultValue:
        try:
            value = kind(str(raw).strip())
        except ValueError:
            raise FaultError(f"{raw!r} is not a number ({unit})") from None
        if not low <= value <= high:
            raise FaultError(f"{raw} is outside {low:g}..{high:g} ({unit})")
        return value

    return parse


def _switch(raw: str) -> FaultValue:
    lowered = str(raw).strip().lower()
    if lowered in {"1", "true", "on", "yes", "503"}:
        return True
    if lowered in {"0", "false", "off", "no"}:
        return False
    raise FaultError(f"{raw!r} is not on or off (1/0, true/false, on/off)")


@dataclass(frozen=True)
class FaultSpec:
    name: str
    parse: Callable[[str], FaultValue]
    help: str
    # An action is done once, when set; a setting is read live by the processes.
    action: bool = False


FAULTS: dict[str, FaultSpec] = {
    spec.name: spec
    for spec in (
        FaultSpec(
            "warehouse.latency_ms",
            _number(int, 0, 60_000, "milliseconds"),
            "extra time the warehouse takes to pack each order",
        ),
        FaultSpec(
            "warehouse.error_rate",
            _number(float, 0, 1, "a share of orders, 0..1"),
            "share of orders the warehouse answers 500 to (nothing packed)",
        ),
        FaultSpec(
            "warehouse.down",
            _switch,
            "the warehouse answers 503 to every order (its health and stats answer)",
        ),
        FaultSpec(
            "warehouse.capacity",
            _number(int, 1, 1000, "orders packed at once"),
            "orders the warehouse packs at once (its WAREHOUSE_CAPACITY, live)",
        ),
        FaultSpec(
            "redis.pause",
            _number(float, 0.1, 60, "seconds"),
            "Redis answers no client for this long (CLIENT PAUSE ALL)",
            action=True,
        ),
        FaultSpec(
            "orders.db_terminate",
            _switch,
            "the orders service's PostgreSQL connections are terminated",
            action=True,
        ),
    )
}
# What `faults kill` may name (the Procfile's names): the launcher kills them, or
# under docker compose each kills itself (common/fault_kills.py).
KILLABLE = ("fulfillment-worker", "orders-worker", "relay", "orders", "warehouse")


@dataclass(frozen=True)
class Fault:
    name: str
    value: FaultValue
    set_at: float
    expires_at: float

    @property
    def seconds_left(self) -> float:
        return max(0.0, round(self.expires_at - time.time(), 1))

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "set_at": self.set_at,
            "expires_at": self.expires_at,
            "seconds_left": self.seconds_left,
        }


def fault_spec(name: str) -> FaultSpec:
    if name not in FAULTS:
        raise FaultError(f"no fault {name!r}; known: {', '.join(FAULTS)}")
    return FAULTS[name]


def fault_value_parse(*, name: str, raw: str | FaultValue) -> FaultValue:
    """`raw` (text from a command line, or a value) as fault `name` takes it."""
    spec = fault_spec(name)
    if isinstance(raw, bool) and spec.parse is not _switch:
        raise FaultError(f"{name} takes a number, not {raw}")
    return spec.parse(str(int(raw)) if isinstance(raw, bool) else str(raw))


def ttl_check(ttl: float) -> float:
    if not 0 < ttl <= MAX_TTL_SECONDS:
        raise FaultError(f"a fault lasts 0..{MAX_TTL_SECONDS:g} s, not {ttl:g}")
    return float(ttl)
