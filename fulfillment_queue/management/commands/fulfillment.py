"""`python manage.py fulfillment dlq list|replay [ID ...|--all]`: the dead letters."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from fulfillment_queue import services
from fulfillment_queue.models import DeadLetter


def _letter_json(letter: DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.pk,
        "order_ref": letter.order_ref,
        "attempts": letter.attempts,
        "reason": letter.reason,
        "created_at": letter.created_at.isoformat(),
        "replayed_at": letter.replayed_at.isoformat() if letter.replayed_at else None,
    }


class Command(BaseCommand):
    help = "Inspect and replay the fulfillment queue's dead letters."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="area", required=True)
        dlq = sub.add_parser("dlq", help="the dead-letter table")
        actions = dlq.add_subparsers(dest="action", required=True)
        listing = actions.add_parser("list", help="list dead letters")
        listing.add_argument("--all", action="store_true", help="replayed ones too")
        listing.add_argument("--json", action="store_true", help="as a JSON list")
        replay = actions.add_parser(
            "replay", help="send dead letters to the queue again"
        )
        replay.add_argument("ids", nargs="*", type=int)
        replay.add_argument("--all", action="store_true", help="every open one")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "list":
            self._list(show_all=options["all"], as_json=options["json"])
        else:
            self._replay(ids=options["ids"], replay_all=options["all"])

    def _list(self, *, show_all: bool, as_json: bool) -> None:
        letters = DeadLetter.objects.all()
        if not show_all:
            letters = letters.filter(replayed_at__isnull=True)
        if as_json:
            self.stdout.write(json.dumps([_letter_json(x) for x in letters]))
            return
        if not letters:
            self.stdout.write("no dead letters")
            return
        for letter in letters:
            state = (
                f"replayed {letter.replayed_at:%Y-%m-%d %H:%M:%S}"
                if letter.replayed_at
                else "open"
            )
            self.stdout.write(
                f"{letter.pk:>6}  {letter.order_ref:<16} {letter.attempts:>2} tries  "
                f"{letter.created_at:%Y-%m-%d %H:%M:%S}  {state}  {letter.reason}"
            )

    def _replay(self, *, ids: list[int], replay_all: bool) -> None:
        if bool(ids) == replay_all:
            raise CommandError("give dead-letter IDs or --all (not both)")
        if ids:
            known = set(
                DeadLetter.objects.filter(
                    pk__in=ids, replayed_at__isnull=True
                ).values_list("pk", flat=True)
            )
            missing = sorted(set(ids) - known)
            if missing:
                raise CommandError(
                    f"no open dead letter with id {', '.join(map(str, missing))}"
                )
        report = services.dead_letters_replay(
            ids=None if replay_all else ids, publish=services.celery_publisher()
        )
        for letter in report.replayed:
            self.stdout.write(f"replayed {letter.pk} ({letter.order_ref})")
        for letter, reason in report.skipped:
            self.stdout.write(f"skipped {letter.pk} ({letter.order_ref}): {reason}")
        summary = f"{len(report.replayed)} dead letters sent to the queue again"
        if report.skipped:
            summary += f", {len(report.skipped)} skipped (left open)"
        self.stdout.write(summary)
        if report.stopped_at is not None:
            raise CommandError(
                f"replay stopped at dead letter {report.stopped_at.pk} "
                f"({report.stopped_at.order_ref}), nothing sent for it or those "
                f"after it: {report.stopped_because}"
            )
