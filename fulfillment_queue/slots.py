"""The worker's slots at the warehouse: at most FULFILLMENT_CONCURRENCY calls at once.

The worker runs more threads than it has slots (FULFILLMENT_STANDBY more, see
settings). A thread on standby has taken its message from the queue, parsed its
orders and reported them started, and waits here for a slot. When a call ends, its
slot goes at once to a waiting thread, whose call starts while the thread that freed
it does its own order's bookkeeping off the slot's time: the log line, the held
reports, the ack, the next message. Without threads on standby that bookkeeping sat
between two calls of a slot, and in a sale, on a busy CPU at a low priority, it
stretched the warehouse's 200 ms of handling to about 240 ms a slot (issue 13).

The warehouse still never holds more of this worker's orders than its slots: a slot
is taken before the request is sent and given back only once the answer (or the
error) is in, when the warehouse has let the order go.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class SlotStats:
    slots: int
    in_use: int
    # The most calls this process had at the warehouse at once.
    peak: int


class Slots:
    """A counting gate for the calls to the warehouse; shared by the threads."""

    def __init__(self, *, slots: int) -> None:
        if slots < 1:
            raise ValueError(f"a worker needs at least one slot, not {slots}")
        self.slots = slots
        self._gate = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self._in_use = 0
        self._peak = 0

    @contextmanager
    def held(self) -> Iterator[None]:
        """Wait for a free slot and hold it for the block (one call at the warehouse).

        A freed slot wakes the thread that has waited longest (the semaphore wakes
        its waiters in turn).
        """
        with self._gate:
            with self._lock:
                self._in_use += 1
                self._peak = max(self._peak, self._in_use)
            try:
                yield
            finally:
                with self._lock:
                    self._in_use -= 1

    def stats(self) -> SlotStats:
        with self._lock:
            return SlotStats(slots=self.slots, in_use=self._in_use, peak=self._peak)


_slots: Slots | None = None
_slots_lock = threading.Lock()


def warehouse_slots() -> Slots:
    """This process's slots, FULFILLMENT_CONCURRENCY of them, made on first use (one
    gate for every thread: two would let twice the calls through)."""
    global _slots
    with _slots_lock:
        if _slots is None:
            _slots = Slots(slots=settings.FULFILLMENT_CONCURRENCY)
        return _slots
