"""The control room of one edge worker: its settings, feed and sale runner."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from edge_router.control_room.feed import Feed
from edge_router.control_room.sale import SaleRunner
from edge_router.control_room.settings import ControlSettings, control_settings

if TYPE_CHECKING:
    from edge_router.app import Edge

logger = logging.getLogger("edge_router.control_room")


class ControlRoom:
    def __init__(self, edge: Edge) -> None:
        self.edge = edge
        orders = edge.table.origins.get("orders")
        self.settings: ControlSettings = control_settings(
            edge.config.env,
            orders_url=orders.url if orders else "http://127.0.0.1:8002",
            mode_key=edge.config.mode_key,
        )
        self.feed = Feed(self)
        self.sale = SaleRunner(self.settings, edge.redis)

    def log_action(
        self, *, who: str, client: str, action: str, command: str, outcome: str
    ) -> None:
        """Who did what, when (the log line's time), as the terminal would: the
        command the button ran, and how it ended."""
        logger.info(
            "control room: %s from %s: %s (`%s`): %s",
            who, client, action, command, outcome,
        )  # fmt: skip

    async def close(self) -> None:
        await self.feed.close()
        await self.sale.close()
