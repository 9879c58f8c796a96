"""An accept's Redis side in one round trip: rate limit, Idempotency-Key, counter.

The lean accept (ordering/accept.py) asks Redis once (scripts.ACCEPT) and, when
the units are admitted, writes one transaction; a refusal (sold out, not open) is
answered, and stored under its key, from Redis alone. After the commit one more
round trip marks the key accepted and wakes the relay (a pipeline).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from orders_api.admission import scripts
from orders_api.admission.keys import (
    counter_key,
    idempotency_key,
    outbox_kick_key,
    rate_key,
    turned_away_key,
)
from orders_api.admission.redis_client import redis_get, script_get

PENDING, ACCEPTED, REFUSED = "P", "A", "R"


@dataclass(frozen=True)
class KeyRef:
    """One client's Idempotency-Key, as Redis holds it."""

    scope: str
    client: str
    key: str
    fingerprint: str

    @property
    def name(self) -> str:
        return idempotency_key(self.scope, self.client, self.key)

    def value(self, state: str, answer: str = "") -> str:
        return f"{self.fingerprint}|{state}|{answer}"


@dataclass(frozen=True)
class Held:
    """What a key already held: whose body, its state, a refusal's answer."""

    fingerprint: str
    state: str
    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class AcceptVerdict:
    code: int
    generation: str
    sale_id: int
    retry_after: int = 0
    # A refusal's answer (CLOSED, SOLD_OUT) or what the key held (KEY_HELD).
    status: int = 0
    body: dict[str, Any] | None = None
    held: Held | None = None

    @property
    def admitted(self) -> bool:
        return self.code >= 0


def _answer(text: str) -> tuple[int, dict[str, Any]]:
    status, _, body = text.partition(" ")
    return int(status), json.loads(body)


def _held(value: str) -> Held:
    fingerprint, state, answer = value.split("|", 2)
    status, body = _answer(answer) if state == REFUSED else (0, {})
    return Held(fingerprint=fingerprint, state=state, status=status, body=body)


def accept_script_input(
    *, slug: str, units: int, client: str, key: KeyRef | None
) -> tuple[list[str], list[Any]]:
    """The ACCEPT script's keys and arguments (the sync call here, the ASGI fast
    lane's async one: web/fast_lane.py)."""
    keys = [
        rate_key(client),
        key.name if key else idempotency_key("-", "-", "-"),
        counter_key(slug),
        turned_away_key(slug),
    ]
    args = [
        settings.ORDERS_RATE_WINDOW_SECONDS,
        settings.ORDERS_RATE_LIMIT,
        units,
        "1" if key else "0",
        settings.ORDERS_IDEMPOTENCY_LEASE_SECONDS,
        settings.ORDERS_IDEMPOTENCY_TTL_SECONDS,
        key.fingerprint if key else "",
    ]
    return keys, args


def accept_verdict(result: Any) -> AcceptVerdict:
    """The ACCEPT script's answer, read."""
    code, text, sale_id, value = result
    code, sale_id = int(code), int(sale_id or 0)
    if code == scripts.RATE_LIMITED:
        return AcceptVerdict(code, "", 0, retry_after=int(text))
    if code == scripts.KEY_HELD:
        return AcceptVerdict(code, "", 0, held=_held(value))
    if code in (scripts.CLOSED, scripts.SOLD_OUT):
        status, body = _answer(value)
        return AcceptVerdict(code, text, sale_id, status=status, body=body)
    return AcceptVerdict(code, str(text or ""), sale_id)


def accept_admit(
    *, slug: str, units: int, client: str, key: KeyRef | None
) -> AcceptVerdict:
    """Rate limit, key and counter in one Lua call (see scripts.ACCEPT)."""
    keys, args = accept_script_input(slug=slug, units=units, client=client, key=key)
    return accept_verdict(script_get("accept")(keys=keys, args=args))


def give_back_input(
    *, slug: str, units: int, generation: str, key: KeyRef | None
) -> tuple[list[str], list[Any]]:
    """The GIVE_BACK script's keys and arguments."""
    return (
        [counter_key(slug), key.name if key else idempotency_key("-", "-", "-")],
        [units, generation, key.value(PENDING) if key else ""],
    )


def accept_give_back(
    *, slug: str, units: int, generation: str, key: KeyRef | None
) -> None:
    """An admitted accept that wrote nothing: its units back, its pending key gone."""
    keys, args = give_back_input(slug=slug, units=units, generation=generation, key=key)
    script_get("give_back")(keys=keys, args=args)


def accept_done(*, key: KeyRef | None) -> None:
    """After the commit: the key marked accepted (its answer is in the database) and
    the relay woken, in one round trip."""
    pipe = redis_get().pipeline(transaction=False)
    if key is not None:
        pipe.set(
            key.name,
            key.value(ACCEPTED),
            ex=settings.ORDERS_IDEMPOTENCY_TTL_SECONDS,
        )
    pipe.lpush(outbox_kick_key(), 1)
    pipe.execute()
