"""Faults scheduled inside a sale (`sale run --fault ... | --chaos`).

    --fault "warehouse.down@+10s/8s"          on 10 s into the sale, for 8 s
    --fault "warehouse.latency_ms=400@+5s/10s"
    --fault "redis.pause=2@+20s"              an action: done at +20 s, lasts 2 s
    --fault "kill:fulfillment-worker@+15s"    the launcher kills it, then restarts it

"+N s" counts from the first Muskie buyer (the end of the baseline, as the load
generator wrote it when it started). A setting with
no "=VALUE" is switched on (`1`); without "/D" it lasts until the end of the sale.
`--chaos` is one of each fault class, one after the other, spread over the sale.

Each fault goes through common/faults.py (the same as `manage.py faults`), with a
TTL of its window plus a little, and is cleared by name at the end of its window;
whatever the run set is cleared again when the mode ends, on an error or Ctrl-C
(`FaultRun.close`, called from a `finally`), and a TTL ends it even if this process
is killed outright.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from common import faults
from loadtest.context import Say

KILL = "kill"
# A setting's key outlives its window by this much at most, should the clear fail.
TTL_MARGIN_SECONDS = 5.0
_SPEC = re.compile(
    r"^(?:kill:(?P<process>[\w-]+)|(?P<name>[\w.]+)(?:=(?P<value>[^@]+))?)"
    r"@\+(?P<at>\d+(?:\.\d+)?)s?(?:/(?P<duration>\d+(?:\.\d+)?)s?)?$"
)


class FaultSpecError(ValueError):
    """A --fault that cannot be scheduled; the message says why."""


@dataclass(frozen=True)
class ScheduledFault:
    name: str
    value: str
    # Seconds after the sale starts; how long it lasts (0: until the sale ends).
    at: float
    duration: float = 0.0

    def describe(self) -> str:
        if self.name == KILL:
            return f"kill {self.value} at +{self.at:g}s"
        window = f"for {self.duration:g}s" if self.duration else "until the sale ends"
        return f"{self.name}={self.value} at +{self.at:g}s {window}"


def fault_spec_parse(text: str) -> ScheduledFault:
    """`NAME[=VALUE]@+Ns[/Ds]` or `kill:PROCESS@+Ns` (FaultSpecError if not)."""
    match = _SPEC.match(text.strip())
    if match is None:
        raise FaultSpecError(
            f"{text!r}: write NAME[=VALUE]@+SECONDSs[/SECONDSs] "
            "(warehouse.down@+10s/8s) or kill:PROCESS@+SECONDSs"
        )
    at, duration = float(match["at"]), float(match["duration"] or 0)
    try:
        if match["process"]:
            if match["process"] not in faults.KILLABLE:
                raise faults.FaultError(
                    f"cannot kill {match['process']!r}; "
                    f"killable: {', '.join(faults.KILLABLE)}"
                )
            return ScheduledFault(KILL, match["process"], at)
        name, raw = match["name"], match["value"] or "1"
        value = faults.fault_value_parse(name=name, raw=raw)
    except faults.FaultError as error:
        raise FaultSpecError(f"{text!r}: {error}") from None
    if name == "redis.pause":
        duration = float(value)
    return ScheduledFault(name, str(raw), at, duration)


# One of each class: (fault, value), laid out one after the other over the sale.
# The warehouse down first: it meets the sale's opening rush, whatever its length.
CHAOS: tuple[tuple[str, str], ...] = (
    ("warehouse.down", "1"),
    (KILL, "fulfillment-worker"),
    ("warehouse.error_rate", "0.3"),
    ("warehouse.capacity", "1"),
    ("warehouse.latency_ms", "300"),
    ("redis.pause", "1"),
    ("orders.db_terminate", "1"),
)


def chaos_schedule(sale_seconds: float) -> list[ScheduledFault]:
    """Every fault class once, each in a slot of its own inside the sale."""
    slot = sale_seconds / len(CHAOS)
    window = round(slot * 0.7, 1)
    planned = []
    for index, (name, value) in enumerate(CHAOS):
        at = round(index * slot, 1)
        if name == "redis.pause":
            value = f"{min(2.0, window):g}"
        duration = 0.0 if name == KILL else window
        if name == "redis.pause":
            duration = float(value)
        planned.append(ScheduledFault(name, value, at, duration))
    return planned


@dataclass
class Injected:
    """What the run did for one scheduled fault, for the report."""

    fault: ScheduledFault
    started: float = 0.0
    ended: float = 0.0
    outcome: str = ""
    ok: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            **asdict(self.fault),
            "describe": self.fault.describe(),
            "started": self.started,
            "ended": self.ended,
            "outcome": self.outcome,
            "ok": self.ok,
        }


@dataclass
class FaultRun:
    """One mode's schedule, played in a thread from the sale's start: the epoch
    second `origin_of()` gives once it knows it (None until then)."""

    store: faults.FaultStore
    schedule: list[ScheduledFault]
    origin_of: Callable[[], float | None]
    sale_seconds: float
    say: Say
    injected: list[Injected] = field(default_factory=list)
    restarts_before: dict[str, int] = field(default_factory=dict)
    origin: float | None = None
    _set: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> FaultRun:
        self.restarts_before = self._restarts()
        self._thread = threading.Thread(target=self._play, name="faults", daemon=True)
        self._thread.start()
        return self

    def _play(self) -> None:
        origin = self.origin_of()
        while origin is None:
            if self._stop.wait(0.1):
                return
            origin = self.origin_of()
        self.origin = origin
        events: list[tuple[float, str, Injected]] = []
        for fault in self.schedule:
            entry = Injected(fault)
            self.injected.append(entry)
            events.append((origin + fault.at, "on", entry))
            if fault.name != KILL and not faults.FAULTS[fault.name].action:
                length = fault.duration or max(0.0, self.sale_seconds - fault.at)
                events.append((origin + fault.at + length, "off", entry))
        for due, what, entry in sorted(events, key=lambda e: e[0]):
            if self._stop.wait(max(0.0, due - time.time())):
                return
            if what == "on":
                self._on(entry)
            else:
                self._off(entry)

    def _on(self, entry: Injected) -> None:
        fault = entry.fault
        entry.started = time.time()
        try:
            if fault.name == KILL:
                answer = faults.fault_kill(process=fault.value, store=self.store)
                entry.outcome = f"killed {fault.value} (pid {answer['pid']})"
                entry.ended = entry.started
            else:
                length = fault.duration or max(1.0, self.sale_seconds - fault.at)
                faults.fault_set(
                    name=fault.name,
                    value=fault.value,
                    ttl=length + TTL_MARGIN_SECONDS,
                    store=self.store,
                )
                self._set.add(fault.name)
                entry.ended = entry.started + (
                    fault.duration if faults.FAULTS[fault.name].action else length
                )
                entry.outcome = "set"
            entry.ok = True
        except (faults.FaultError, OSError, RuntimeError) as error:
            entry.outcome = f"not injected: {error}"
        except Exception as error:
            entry.outcome = f"not injected: {type(error).__name__}: {error}"
        self.say(f"  fault: {fault.describe()}: {entry.outcome}")

    def _off(self, entry: Injected) -> None:
        try:
            faults.fault_clear(name=entry.fault.name, store=self.store)
            self._set.discard(entry.fault.name)
            entry.ended = time.time()
            self.say(f"  fault: {entry.fault.name} cleared")
        except Exception as error:
            self.say(f"  fault: {entry.fault.name} not cleared ({error}); its TTL will")

    def close(self) -> None:
        """Stop the schedule and clear every fault this run set (idempotent)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        for name in sorted(self._set):
            try:
                faults.fault_clear(name=name, store=self.store)
            except Exception as error:
                self.say(f"  fault: {name} not cleared ({error}); its TTL will")
        if self._set:
            self.say(f"  faults cleared: {', '.join(sorted(self._set))}")
        self._set.clear()

    def _restarts(self) -> dict[str, int]:
        try:
            return self.store.restarts()
        except Exception:
            return {}

    def restarts(self) -> dict[str, int]:
        now = self._restarts()
        return {
            name: count - self.restarts_before.get(name, 0)
            for name, count in now.items()
            if count > self.restarts_before.get(name, 0)
        }

    def windows(self) -> list[dict[str, Any]]:
        return [i.as_json() for i in self.injected]
