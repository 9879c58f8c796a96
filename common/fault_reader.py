"""What a process reads on its hot path: the faults in force, with no I/O.

`faults_live().get("warehouse.down")` answers from a snapshot that a daemon thread
re-reads every FAULTS_POLL_SECONDS (one MGET), so a paused or dead Redis never slows
a request; a fault past its expiry is dropped by the reader itself, even while Redis
is unreachable. common/faults.py re-exports it.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from common.fault_catalogue import Fault, FaultValue
from common.redis_client import REDIS_FAULTS

if TYPE_CHECKING:
    from common.faults import FaultStore


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
                from common.faults import fault_store

                _live = FaultReader(fault_store(), poll=poll)
    return _live
