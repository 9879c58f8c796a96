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
`fault_kill` leaves a request, the launcher takes it, kills, answers, restarts.

Every change is logged (`fault_log`, the last 200): the control room shows them.
Names, values and limits are in FAULTS; a bad one is a `FaultError` naming what is
allowed. Configuration (docs/guides/faults.md): REDIS_URL, FAULTS_KEY_PREFIX
(default `faults`), FAULTS_DEFAULT_TTL (seconds, default 300), FAULTS_POLL_SECONDS
(how often a process re-reads them, default 0.5).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import redis

from common.redis_client import REDIS_FAULTS, redis_from_url

logger = logging.getLogger(__name__)

MAX_TTL_SECONDS = 3600.0
LOG_LENGTH = 200
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
# What `faults kill` may name: the launcher's processes (the Procfile's names).
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

    # --- kills, through the launcher -------------------------------------------------

    def kill_request(self, process: str) -> tuple[str, str]:
        """Leave a request for the launcher: (its id, the request as stored)."""
        request_id = uuid.uuid4().hex
        body = json.dumps({"id": request_id, "process": process, "at": time.time()})
        self.redis.rpush(self.key("kill"), body)
        self.redis.expire(self.key("kill"), 60)
        return request_id, body

    def kill_request_withdraw(self, body: str) -> None:
        self.redis.lrem(self.key("kill"), 0, body)

    def kill_requests_take(self) -> list[dict[str, Any]]:
        taken = []
        while (raw := self.redis.lpop(self.key("kill"))) is not None:
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
    """Ask the launcher supervising `process` to kill it (SIGKILL), and wait for
    its answer: {"process", "pid"} once killed. FaultError when it is not a
    process the launcher runs, or no launcher answers within `wait` seconds."""
    if process not in KILLABLE:
        raise FaultError(f"cannot kill {process!r}; killable: {', '.join(KILLABLE)}")
    store = store or fault_store()
    request_id, body = store.kill_request(process)
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
    store.kill_request_withdraw(body)
    raise FaultError(
        f"no launcher answered the kill of {process} in {wait:g}s: only a stack "
        "started by `make demo` (or a test's supervisor) can kill and restart it"
    )


# --- the live reader of the processes a fault affects -------------------------------


class FaultReader:
    """What a process reads on its hot path: a snapshot, refreshed by a thread.

    `get()` never does I/O: a daemon thread re-reads the keys every `poll` seconds
    (one MGET), so a slow or paused Redis never slows a request. A snapshot older
    than a fault's expiry drops that fault by itself. Made on first use in each
    process (after a fork, the child makes its own thread).
    """

    def __init__(self, store: FaultStore, *, poll: float = 0.5) -> None:
        self.store = store
        self.poll = poll
        self._faults: dict[str, Fault] = {}
        self._pid = 0
        self._lock = threading.Lock()

    def get(self, name: str) -> FaultValue | None:
        self._ensure_polling()
        fault = self._faults.get(name)
        if fault is None or fault.expires_at <= time.time():
            return None
        return fault.value

    def refresh(self) -> None:
        # Redis away: keep what we knew; each fault still ends at its own expiry.
        with contextlib.suppress(*REDIS_FAULTS):
            self._faults = self.store.read_all()

    def _ensure_polling(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            # Made on a request's first read: the first MGET belongs to no trace.
            with untraced():
                self.refresh()
            threading.Thread(target=self._loop, name="faults", daemon=True).start()

    def _loop(self) -> None:
        while True:
            time.sleep(self.poll)
            self.refresh()


@contextlib.contextmanager
def untraced() -> Iterator[None]:
    """Instrumentations make no span inside (OpenTelemetry's suppression key)."""
    from opentelemetry import context as otel_context
    from opentelemetry.instrumentation.utils import _SUPPRESS_INSTRUMENTATION_KEY

    token = otel_context.attach(
        otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True)
    )
    try:
        yield
    finally:
        otel_context.detach(token)


_live: FaultReader | None = None
_live_lock = threading.Lock()


def faults_live() -> FaultReader:
    """This process's reader of the stack's faults (REDIS_URL, FAULTS_KEY_PREFIX)."""
    global _live
    if _live is None:
        with _live_lock:
            if _live is None:
                poll = float(os.environ.get("FAULTS_POLL_SECONDS", "") or 0.5)
                _live = FaultReader(fault_store(), poll=poll)
    return _live
