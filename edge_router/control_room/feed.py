"""The charts' feed: one sampler per edge worker, only while someone watches.

Each tick (EDGE_CONTROL_PUSH_SECONDS, 1 s) the sampler reads every source once
(sources.py) and hands the same JSON text to every viewer's queue; a viewer too
slow to take it loses the older tick, never stalls the others. The last
HISTORY ticks are kept, so a page opened mid-sale draws what came before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from edge_router.control_room import faults, sources

if TYPE_CHECKING:
    from edge_router.control_room.room import ControlRoom

logger = logging.getLogger("edge_router.control_room")
HISTORY = 300
VIEWER_QUEUE = 4


class Feed:
    def __init__(self, room: ControlRoom) -> None:
        self.room = room
        self.viewers: set[asyncio.Queue[str]] = set()
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    def join(self) -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=VIEWER_QUEUE)
        self.viewers.add(queue)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="control-room-feed")
        return queue

    def leave(self, queue: asyncio.Queue[str]) -> None:
        self.viewers.discard(queue)

    async def _run(self) -> None:
        readings = sources.Readings(self.room.settings)
        interval = self.room.settings.push_seconds
        while self.viewers:
            started = time.monotonic()
            try:
                snapshot = await self.tick(readings)
            except Exception:  # a tick that fails must not end the feed
                logger.exception("control room: a tick failed")
            else:
                self.history.append(snapshot)
                text = json.dumps({"type": "tick", **snapshot})
                for queue in list(self.viewers):
                    if queue.full():
                        queue.get_nowait()
                    queue.put_nowait(text)
            await asyncio.sleep(max(0.05, interval - (time.monotonic() - started)))

    async def tick(self, readings: sources.Readings) -> dict[str, Any]:
        """Every figure of one moment, the same for every viewer."""
        room = self.room
        edge = room.edge
        self.ticks += 1
        # The edge's session makes no spans (the edge makes its own, per traced
        # request): the feed's reads belong to no trace.
        figures = await sources.sample(
            readings, session=edge.session, client=edge.redis
        )
        in_force: list[dict[str, Any]] | None
        try:
            in_force = await faults.faults_in_force(
                edge.redis, room.settings.faults_prefix
            )
            sale = await room.sale.progress()
        except sources.REDIS_ERRORS:
            in_force, sale = None, None
        return {
            **figures,
            "mode": edge.follower.current.as_dict(),
            "faults": in_force,
            "sale": sale,
            "viewers": len(self.viewers),
        }

    async def close(self) -> None:
        self.viewers.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
