"""What the edge allows a visitor's connections, from the route table's `[listener]`
and `[websockets]` tables (both optional; the defaults below apply).

These are listener-wide, not per behaviour, so that both engines can say them the
same way (nginx: `client_header_timeout`, `client_body_timeout`, `limit_conn`).
Counts are per edge worker: with N workers an address may hold up to N times as many.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class ListenerLimits:
    # Seconds for a request's headers, from its first byte (or from the connection's
    # start, for its first request): 408 and close if they are not all in.
    header_timeout: float = 10.0
    # Seconds for a whole request body, and between two pieces of it: 408 and close.
    body_timeout: float = 30.0
    body_idle_timeout: float = 10.0
    # Open HTTP connections one client address may hold on one worker; the next one
    # is answered 429 and closed. Everything on loopback is one address: keep it
    # above what a load test opens per worker.
    max_connections_per_address: int = 512


@dataclass(frozen=True)
class WebsocketLimits:
    # Websockets to origins, per worker: a pool of their own, so that idle
    # websockets never take the connections HTTP requests need.
    pool: int = 1024
    # Open websockets one client address may hold on one worker (then 429).
    max_per_address: int = 32
    # Seconds without a message either way before the edge closes both sides (1001).
    idle_timeout: float = 300.0


def _limits_parse(
    cls: type[Any], name: str, raw: Any, problems: list[str]
) -> Any:  # ListenerLimits | WebsocketLimits
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        problems.append(f"[{name}] must be a table")
        return cls()
    kinds = {f.name: f.type for f in fields(cls)}
    for key in sorted(set(raw) - set(kinds)):
        problems.append(f"[{name}]: unknown key {key!r}")
    values: dict[str, Any] = {}
    for key, kind in kinds.items():
        if key not in raw:
            continue
        value = raw[key]
        whole = kind == "int"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"[{name}]: {key} must be a number, not {value!r}")
        elif whole and not isinstance(value, int):
            problems.append(f"[{name}]: {key} must be a whole number, not {value!r}")
        elif value <= 0:
            problems.append(f"[{name}]: {key} must be above zero, not {value!r}")
        else:
            values[key] = int(value) if whole else float(value)
    return cls(**values)


def listener_parse(raw: Any, problems: list[str]) -> ListenerLimits:
    limits: ListenerLimits = _limits_parse(ListenerLimits, "listener", raw, problems)
    return limits


def websockets_parse(raw: Any, problems: list[str]) -> WebsocketLimits:
    limits: WebsocketLimits = _limits_parse(
        WebsocketLimits, "websockets", raw, problems
    )
    return limits
