"""Faults switched on while the stack runs: data in Redis, read live, gone by a TTL.

    fault_set(name="warehouse.latency_ms", value=400, ttl=60)
    fault_list()                      the faults in force, each with its time left
    fault_clear()                     every fault; fault_clear(name=...) one of them
    fault_kill(process="fulfillment-worker")   the launcher kills it, then restarts it
    faults_live().get("warehouse.down")        what a process reads on its hot path

A *setting* (the warehouse's latency, error rate, down, capacity) is one key,
`<FAULTS_KEY_PREFIX>:<name>`, holding JSON with its value and when it expires; Redis
drops it at that moment (its TTL) and every reader ignores it past that moment too,
so no fault outlives its TTL, even when Redis is unreachable. An *action* (Redis
paused, the orders service's database connections terminated) is done at once by
`fault_set` and leaves a key for as long as it lasts, so `fault_list` shows it. A
process is killed by the launcher that supervises it (common/harness/supervisor.py):
`fault_kill` leaves a request, the launcher takes it, kills, answers, restarts; with
no launcher (docker compose), by itself (common/fault_kills.py).

Every change is logged (`fault_log`, the last 200): the control room shows them.
Names, values and limits are in FAULTS; a bad one is a `FaultError` naming what is
allowed. Configuration (docs/guides/faults.md): REDIS_URL, FAULTS_KEY_PREFIX
(default `faults`), FAULTS_DEFAULT_TTL (seconds, default 300), FAULTS_POLL_SECONDS
(how often a process re-reads them, default 0.5).

The module is split by responsibility, and this one re-exports the rest:
common/fault_catalogue.py (names, values, limits), common/fault_reader.py (the live
reader), common/fault_actions.py (what an action does), common/fault_kills.py (a
process that kills itself on request, under docker compose).
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Iterable
from typing import Any

import redis

from common.fault_catalogue import (
    FAULTS,
    KILLABLE,
    MAX_TTL_SECONDS,
    Fault,
    FaultError,
    FaultSpec,
    FaultValue,
    fault_spec,
    fault_value_parse,
    ttl_check,
)
from common.fault_reader import FaultReader, faults_live, untraced
from common.redis_client import redis_from_url

__all__ = [
    "FAULTS",
    "KILLABLE",
    "MAX_TTL_SECONDS",
    "Fault",
    "FaultError",
    "FaultReader",
    "FaultSpec",
    "FaultStore",
    "FaultValue",
    "fault_clear",
    "fault_kill",
    "fault_list",
    "fault_set",
    "fault_spec",
    "fault_store",
    "fault_value_parse",
    "faults_decode",
    "faults_live",
    "ttl_check",
    "untraced",
]

logger = logging.getLogger(__name__)

LOG_LENGTH = 200


class FaultStore:
    """The faults of one stack: keys under `prefix` in one Redis database."""

    def __init__(self, client: redis.Redis, *, prefix: str = "faults") -> None:
        self.redis = client
        self.prefix = prefix

    def key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    # --- settings and actions --------------------------------------------------------

    def write(self, *, name: str, value: FaultValue, ttl: float) -> Fault:
        now = time.time()
        fault = Fault(name=name, value=value, set_at=now, expires_at=now + ttl)
        body = json.dumps({"value": value, "set_at": now, "expires_at": now + ttl})
        self.redis.set(self.key(name), body, px=max(1, int(ttl * 1000)))
        return fault

    def read_all(self) -> dict[str, Fault]:
        names = list(FAULTS)
        raw: list[bytes | str | None] = self.redis.mget([self.key(n) for n in names])
        return faults_decode(zip(names, raw, strict=True))

    def delete(self, names: Iterable[str]) -> int:
        keys = [self.key(n) for n in names]
        return int(self.redis.delete(*keys)) if keys else 0

    # --- the log of what was done ----------------------------------------------------

    def log(self, event: str, **fields: Any) -> None:
        entry = json.dumps({"at": time.time(), "event": event, **fields})
        pipe = self.redis.pipeline()
        pipe.lpush(self.key("log"), entry)
        pipe.ltrim(self.key("log"), 0, LOG_LENGTH - 1)
        pipe.execute()

    def log_read(self, limit: int = LOG_LENGTH) -> list[dict[str, Any]]:
        entries: list[bytes | str] = self.redis.lrange(self.key("log"), 0, limit - 1)
        return [json.loads(e) for e in entries]

    # --- kills: through the launcher, or by the process itself ----------------------

    def alive(self, who: str, *, ttl: float) -> None:
        """`who` (`launcher`, or a process's name) takes kill requests: for `ttl` s."""
        self.redis.set(self.key(f"alive:{who}"), os.getpid(), px=int(ttl * 1000))

    def is_alive(self, who: str) -> bool:
        return bool(self.redis.exists(self.key(f"alive:{who}")))

    def kill_request(self, process: str, *, queue: str = "kill") -> tuple[str, str]:
        """Leave a request in `queue` (`kill`: the launcher's; `kill-self:<name>`:
        the process's own): (its id, the request as stored)."""
        request_id = uuid.uuid4().hex
        body = json.dumps({"id": request_id, "process": process, "at": time.time()})
        self.redis.rpush(self.key(queue), body)
        self.redis.expire(self.key(queue), 60)
        return request_id, body

    def kill_request_withdraw(self, body: str, *, queue: str = "kill") -> None:
        self.redis.lrem(self.key(queue), 0, body)

    def kill_requests_take(self, *, queue: str = "kill") -> list[dict[str, Any]]:
        taken = []
        while (raw := self.redis.lpop(self.key(queue))) is not None:
            taken.append(json.loads(_text(raw)))
        return taken

    def kill_answer(self, request_id: str, answer: dict[str, Any]) -> None:
        self.redis.set(self.key(f"kill:{request_id}"), json.dumps(answer), ex=60)

    def kill_answer_get(self, request_id: str) -> dict[str, Any] | None:
        raw = self.redis.get(self.key(f"kill:{request_id}"))
        return json.loads(raw) if raw else None

    def restart_record(self, process: str) -> None:
        self.redis.hincrby(self.key("restarts"), process, 1)

    def restarts(self) -> dict[str, int]:
        found: dict[bytes | str, bytes | str] = self.redis.hgetall(self.key("restarts"))
        return {_text(k): int(v) for k, v in found.items()}


def _text(raw: object) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def faults_decode(pairs: Iterable[tuple[str, bytes | str | None]]) -> dict[str, Fault]:
    """The faults still in force among (name, stored JSON) pairs."""
    now = time.time()
    found: dict[str, Fault] = {}
    for name, raw in pairs:
        if not raw:
            continue
        try:
            data = json.loads(raw)
            fault = Fault(name, data["value"], data["set_at"], data["expires_at"])
        except (ValueError, KeyError, TypeError):
            logger.warning("ignoring the unreadable fault %s: %r", name, raw)
            continue
        if fault.expires_at > now:
            found[name] = fault
    return found


def fault_store(url: str | None = None, *, prefix: str | None = None) -> FaultStore:
    """The stack's store, from REDIS_URL and FAULTS_KEY_PREFIX unless given."""
    url = url or os.environ.get("REDIS_URL", "") or "redis://127.0.0.1:6379/0"
    prefix = prefix or os.environ.get("FAULTS_KEY_PREFIX", "") or "faults"
    return FaultStore(redis_from_url(url, max_connections=4), prefix=prefix)


def default_ttl() -> float:
    return ttl_check(float(os.environ.get("FAULTS_DEFAULT_TTL", "") or 300))


# --- the API: keyword-only, `<entity>_<action>` -------------------------------------


def fault_set(
    *,
    name: str,
    value: str | FaultValue,
    ttl: float | None = None,
    store: FaultStore | None = None,
) -> Fault:
    """Switch fault `name` to `value` for `ttl` seconds (an action: do it now).

    A setting's value replaces the one in force; `redis.pause` lasts its own
    seconds, whatever `ttl` says. Raises FaultError for a bad name, value or TTL.
    """
    from common import fault_actions

    spec = fault_spec(name)
    parsed = fault_value_parse(name=name, raw=value)
    store = store or fault_store()
    if name == "redis.pause":
        ttl = float(parsed)
    ttl = ttl_check(default_ttl() if ttl is None else ttl)
    fault = store.write(name=name, value=parsed, ttl=ttl)
    store.log("set", name=name, value=parsed, ttl=ttl)
    if spec.action and parsed:
        detail = fault_actions.action_do(name=name, value=parsed, store=store)
        logger.warning("fault %s=%s: %s", name, parsed, detail)
    return fault


def fault_list(*, store: FaultStore | None = None) -> list[Fault]:
    """The faults in force now, in the catalogue's order."""
    return list((store or fault_store()).read_all().values())


def fault_clear(
    *, name: str | None = None, store: FaultStore | None = None
) -> list[str]:
    """End fault `name` (every fault when None); the names that were in force."""
    store = store or fault_store()
    names = [fault_spec(name).name] if name else list(FAULTS)
    in_force = [n for n in store.read_all() if n in names]
    store.delete(names)
    store.log("clear", names=in_force)
    return in_force


def fault_kill(
    *, process: str, store: FaultStore | None = None, wait: float = 5.0
) -> dict[str, Any]:
    """Have `process` killed (SIGKILL) and wait for the answer: {"process", "pid"}
    once killed. The launcher that supervises it kills it, then restarts it; with no
    launcher, a process that watches for its own kill requests (under docker
    compose: FAULTS_PROCESS, common/fault_kills.py) kills itself, and compose's
    `restart:` starts it again. FaultError when it is not a killable process, when
    neither is there, or when nobody answers within `wait` seconds."""
    if process not in KILLABLE:
        raise FaultError(f"cannot kill {process!r}; killable: {', '.join(KILLABLE)}")
    store = store or fault_store()
    if store.is_alive("launcher"):
        queue = "kill"
    elif store.is_alive(process):
        queue = f"kill-self:{process}"
    else:
        raise FaultError(kill_nobody(process))
    request_id, body = store.kill_request(process, queue=queue)
    store.log("kill", process=process)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        answer = store.kill_answer_get(request_id)
        if answer is not None:
            if "error" in answer:
                raise FaultError(str(answer["error"]))
            return answer
        time.sleep(0.1)
    # Nobody took it: a launcher started later must not kill on an old request.
    store.kill_request_withdraw(body, queue=queue)
    taker = "the launcher" if queue == "kill" else process
    raise FaultError(f"{taker} did not answer the kill of {process} in {wait:g}s")


def kill_nobody(process: str) -> str:
    """Why no kill request can be taken, and what to do instead."""
    return (
        f"nothing takes kill requests for {process} on this stack: no launcher runs "
        f"it (`make demo` does, and restarts what it kills) and no {process} watches "
        f"for its own (under docker compose each killable service does, with "
        f"FAULTS_PROCESS={process} and `init: true`: is it running, on this Redis "
        f"and FAULTS_KEY_PREFIX?). By hand under compose: `docker compose kill "
        f"{process}`, then `docker compose start {process}` (compose restarts a "
        "process that died, not a container it was told to kill)"
    )
