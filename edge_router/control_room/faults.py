"""The faults, for the control room: the one adapter between it and the stack's
faults (issue 17; common/faults.py and `manage.py faults`, the faults branch).

Switching runs `python manage.py faults set|clear|kill ...`, the terminal's own
command, so the edge imports nothing of it (common.faults reaches Django through
common.redis_client). What is in force is read from Redis as the faults store keeps
it: one key `<FAULTS_KEY_PREFIX>:<name>` per fault, JSON with its value and expiry.
The catalogue below is what the page offers; the command checks every value.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio as aioredis

FAULTS_COMMAND = ["manage.py", "faults"]
VALUE = re.compile(r"^[0-9A-Za-z.]{1,16}$")
MAX_TTL = 3600.0


@dataclass(frozen=True)
class FaultSwitch:
    name: str
    kind: str  # "switch" (on/off) or "number"
    unit: str
    example: str
    help: str


CATALOGUE: tuple[FaultSwitch, ...] = (
    FaultSwitch("warehouse.down", "switch", "", "1", "the warehouse answers 503"),
    FaultSwitch(
        "warehouse.latency_ms", "number", "ms", "400", "each order takes longer"
    ),
    FaultSwitch(
        "warehouse.error_rate", "number", "0..1", "0.3", "a share of orders gets 500"
    ),
    FaultSwitch(
        "warehouse.capacity", "number", "orders", "2", "orders packed at once"
    ),
    FaultSwitch(
        "redis.pause", "number", "s", "3", "Redis answers nobody (CLIENT PAUSE)"
    ),
    FaultSwitch(
        "orders.db_terminate", "switch", "", "1",
        "the orders service's PostgreSQL connections are terminated",
    ),
)  # fmt: skip
NAMES = {fault.name for fault in CATALOGUE}
KILLABLE = ("fulfillment-worker", "orders-worker", "relay", "orders", "warehouse")


class FaultRefused(ValueError):
    """A name, value or duration the page does not offer."""


def catalogue() -> dict[str, Any]:
    return {
        "faults": [asdict(fault) for fault in CATALOGUE],
        "killable": list(KILLABLE),
    }


def set_argv(doc: dict[str, Any]) -> list[str]:
    """`faults set NAME=VALUE [--ttl S]` from {"name", "value", "ttl"}."""
    unknown = sorted(set(doc) - {"name", "value", "ttl"})
    if unknown:
        raise FaultRefused(f"unknown fields: {unknown}")
    name, value, ttl = doc.get("name"), doc.get("value"), doc.get("ttl")
    if name not in NAMES:
        raise FaultRefused(f"name must be one of {', '.join(sorted(NAMES))}")
    text = str(value).lower() if isinstance(value, bool | int | float) else value
    if not isinstance(text, str) or not VALUE.match(text):
        raise FaultRefused("value must be a number or on/off, e.g. 400, 0.3, 1")
    argv = [*FAULTS_COMMAND, "set", f"{name}={text}"]
    if ttl is not None:
        if isinstance(ttl, bool) or not isinstance(ttl, int | float):
            raise FaultRefused("ttl must be a number of seconds")
        if not 0 < ttl <= MAX_TTL:
            raise FaultRefused(f"ttl must be between 1 and {MAX_TTL:g} seconds")
        argv += ["--ttl", f"{ttl:g}"]
    return argv


def clear_argv(doc: dict[str, Any]) -> list[str]:
    """`faults clear [NAME]` from {"name"?}."""
    unknown = sorted(set(doc) - {"name"})
    if unknown:
        raise FaultRefused(f"unknown fields: {unknown}")
    name = doc.get("name")
    if name is None:
        return [*FAULTS_COMMAND, "clear"]
    if name not in NAMES:
        raise FaultRefused(f"name must be one of {', '.join(sorted(NAMES))}")
    return [*FAULTS_COMMAND, "clear", name]


def kill_argv(doc: dict[str, Any]) -> list[str]:
    """`faults kill PROCESS` from {"process"}."""
    if set(doc) != {"process"} or doc["process"] not in KILLABLE:
        raise FaultRefused(f'send {{"process": P}}, P one of {", ".join(KILLABLE)}')
    return [*FAULTS_COMMAND, "kill", doc["process"]]


async def faults_in_force(client: aioredis.Redis, prefix: str) -> list[dict[str, Any]]:
    """The faults in force now, as the store keeps them (one MGET)."""
    names = [fault.name for fault in CATALOGUE]
    raw = await client.mget([f"{prefix}:{name}" for name in names])
    now = time.time()
    found = []
    for name, stored in zip(names, raw, strict=True):
        if not stored:
            continue
        try:
            data = json.loads(stored)
            value, expires_at = data["value"], float(data["expires_at"])
        except (ValueError, KeyError, TypeError):
            continue
        if expires_at > now:
            left = round(expires_at - now)
            found.append({"name": name, "value": value, "seconds_left": left})
    return found
