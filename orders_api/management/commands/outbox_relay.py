"""`python manage.py outbox_relay`: the transactional outbox's relay process.

On start it rebuilds every live sale's Redis counter from the database. Then, in a
loop: publish pending events (woken at once by a committed order, else polling),
fold accepted orders into their sale's units_sold (four times a second at most),
push changed sale boards (twice a second at most), re-publish orders that heard
nothing from the queue for ORDERS_REDELIVER_SECONDS (never past
ORDERS_REDELIVER_QUEUE_BOUND queued messages), rebuild a sale's counter that lost
units (every ORDERS_RECONCILE_SECONDS), sweep expired idempotency keys.

Traced as `outbox-relay` (see orders_api/outbox/relay.py for how a publish joins the
purchase's trace).
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from common.fault_kills import kill_watch_from_env
from common.tracing import instrument_process
from orders_api.admission.counter import Reading
from orders_api.live import broadcast
from orders_api.ordering import idempotency
from orders_api.outbox import relay as outbox
from orders_api.outbox.wakeup import outbox_wait
from orders_api.sales.services import sales_counters_rebuild, sales_counters_reconcile

logger = logging.getLogger("orders_api.relay")
# What a pass may meet and outlive: the database or Redis (the broker: Kombu's
# OperationalError) down or hanging. The relay retries; it never exits for these.
PASS_FAULTS = (DatabaseError, RedisError, OperationalError, OSError)
# The sale boards' figures go out at most this often (they count every order).
BOARD_PUSH_SECONDS = 0.5
# Accepted orders are folded into units_sold at most this often, not on every pass
# (a pass per kick in a rush): until then they count as pending, in the database's
# figure of what is left as in the counter's (sales/selectors sale_remaining_in_db).
TALLY_SECONDS = 0.25


class Command(BaseCommand):
    help = "Publish outbox events to the queue (runs until stopped)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--once", action="store_true", help="one pass over the outbox, then exit"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # Before the first connection is opened, so psycopg and Redis are patched.
        instrument_process("outbox-relay")
        self.running = True
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        config = outbox.relay_settings()
        publish = outbox.celery_publisher()
        try:
            for slug, remaining in sales_counters_rebuild():
                self.stdout.write(f"counter of {slug}: {remaining} units left")
        except PASS_FAULTS:
            # A missing counter is rebuilt on its first use (sales/services.py).
            logger.exception("could not rebuild the sales' counters at start")
        heartbeat = Path(settings.ORDERS_RELAY_HEARTBEAT_FILE or os.devnull)
        last_redeliver = last_sweep = last_board = last_reconcile = time.monotonic()
        last_tally = 0.0
        counters_seen: dict[str, Reading | None] = {}
        # Under docker compose (FAULTS_PROCESS): `faults kill relay` answered here.
        kill_watch_from_env()
        self.stdout.write("outbox relay running")
        while self.running:
            if settings.ORDERS_RELAY_HEARTBEAT_FILE:
                heartbeat.touch()
            try:
                published = outbox.outbox_publish_batch(
                    publish=publish, limit=config["batch"], bundle=config["bundle"]
                )
                now = time.monotonic()
                if now - last_tally >= TALLY_SECONDS:
                    last_tally = now
                    outbox.orders_tally(limit=config["batch"] * 5)
                if now - last_board >= BOARD_PUSH_SECONDS:
                    last_board = now
                    broadcast.boards_push_dirty()
                if now - last_redeliver >= config["redeliver"].total_seconds() / 4:
                    last_redeliver = now
                    outbox.orders_redeliver(
                        older_than=config["redeliver"],
                        queue_bound=config["queue_bound"],
                    )
                if now - last_reconcile >= config["reconcile"]:
                    last_reconcile = now
                    for slug, missing in sales_counters_reconcile(seen=counters_seen):
                        logger.warning("counter of %s rebuilt (%+d)", slug, missing)
                if now - last_sweep >= config["sweep"]:
                    last_sweep = now
                    idempotency.idempotency_sweep()
            except PASS_FAULTS:
                logger.exception("relay pass failed; retrying")
                close_old_connections()
                time.sleep(1)
                continue
            if options["once"]:
                return
            if published < config["batch"]:
                outbox_wait(timeout=config["idle"], gather=config["gather"])

    def _stop(self, signum: int, frame: Any) -> None:
        self.running = False
