"""Watching the stack while the load runs: the warehouse's in-flight orders, the
queue's depth and the sale board, sampled a few times a second in a thread."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import httpx
import redis

from loadtest.operations import Stack


@dataclass(frozen=True)
class Sample:
    at: float
    in_flight: int
    peak_in_flight: int
    refused: int
    warehouse_fulfilled: int
    queue_depth: int
    # From the orders service's board (strangler): accepted but not yet packed.
    waiting: int
    board_accepted: int
    board_fulfilled: int


# What a look at the stack may meet when it is too busy (or down) to answer.
SAMPLE_FAULTS = (httpx.HTTPError, redis.RedisError, ValueError)


class Sampler(threading.Thread):
    def __init__(self, stack: Stack, *, board: bool, interval: float = 0.25) -> None:
        super().__init__(name="sale-sampler", daemon=True)
        self.stack = stack
        self.board = board
        self.interval = interval
        self.samples: list[Sample] = []
        self.errors = 0
        self._stop_event = threading.Event()
        self._board: dict[str, Any] = {}
        self._board_at = 0.0

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self.samples.append(self.take())
            except SAMPLE_FAULTS:
                self.errors += 1
            self._stop_event.wait(self.interval)

    def take(self) -> Sample:
        stats = self.stack.warehouse_stats()
        depth = self.stack.queue_depth()
        now = time.time()
        # The board costs the orders service a query: once a second is enough.
        if self.board and now - self._board_at >= 1.0:
            self._board = self.stack.sale_board() or {}
            self._board_at = now
        board = self._board
        return Sample(
            at=now,
            in_flight=int(stats["in_flight"]),
            peak_in_flight=int(stats["peak_in_flight"]),
            refused=int(stats["refused"]),
            warehouse_fulfilled=int(stats["fulfilled"]),
            queue_depth=depth,
            waiting=int(board.get("queued", 0)) + int(board.get("in_warehouse", 0)),
            board_accepted=int(board.get("accepted", 0)),
            board_fulfilled=int(board.get("fulfilled", 0)),
        )

    def latest(self) -> Sample | None:
        return self.samples[-1] if self.samples else None

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)

    def as_rows(self) -> list[dict[str, Any]]:
        return [asdict(s) for s in self.samples]
