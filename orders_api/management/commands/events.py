"""`python manage.py events replay --since ISO [--type T ...]`: re-publish events.

The events are marked for the outbox again; the relay sends them. Every consumer is
idempotent (by event id; the warehouse by order_ref), so a replay is harmless.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orders_api.outbox import relay


def _aware(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--since {value!r} is not an ISO 8601 date") from None
    if moment.tzinfo is None:
        raise CommandError("--since needs a UTC offset, e.g. 2026-11-26T09:00:00Z")
    return moment


class Command(BaseCommand):
    help = "Re-publish logged events."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        replay = sub.add_parser("replay", help="re-publish events since a moment")
        replay.add_argument("--since", required=True, help="ISO 8601, with offset")
        replay.add_argument(
            "--type", action="append", dest="types", help="only this type (repeat)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        since = _aware(options["since"])
        count = relay.events_replay(since=since, types=options["types"])
        self.stdout.write(f"{count} events marked for re-publishing by the relay")
