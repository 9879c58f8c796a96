"""`python manage.py faults ...`: switch faults on the running stack (common/faults.py).

faults set warehouse.latency_ms=400 warehouse.error_rate=0.2 [--ttl 60]
faults list [--json]          faults clear [NAME]
faults kill fulfillment-worker                faults log [--limit 20]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from common import faults
from common.redis_client import REDIS_FAULTS


def _ttl(raw: str) -> float:
    try:
        return faults.ttl_check(float(raw))
    except (ValueError, faults.FaultError) as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def assignments_parse(items: list[str]) -> list[tuple[str, faults.FaultValue]]:
    """NAME=VALUE words, every one checked before any is set."""
    parsed = []
    for item in items:
        name, equals, raw = item.partition("=")
        if not equals or not raw:
            raise faults.FaultError(
                f"{item!r}: write NAME=VALUE, e.g. warehouse.down=1"
            )
        parsed.append((name, faults.fault_value_parse(name=name, raw=raw)))
    return parsed


class Command(BaseCommand):
    help = "Switch faults on the running stack: set, list, clear, kill a process."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(
            dest="action", required=True, parser_class=type(parser)
        )
        set_ = sub.add_parser(
            "set",
            help="switch faults on: "
            + ", ".join(f"{s.name} ({s.help})" for s in faults.FAULTS.values()),
        )
        set_.add_argument("assignments", nargs="+", metavar="NAME=VALUE")
        set_.add_argument(
            "--ttl", type=_ttl, help="seconds it lasts (default FAULTS_DEFAULT_TTL)"
        )
        listing = sub.add_parser("list", help="the faults in force, with time left")
        listing.add_argument("--json", action="store_true")
        clear = sub.add_parser("clear", help="end one fault, or every one")
        clear.add_argument("name", nargs="?", choices=list(faults.FAULTS))
        kill = sub.add_parser(
            "kill", help="SIGKILL a process; the launcher restarts it"
        )
        kill.add_argument("process", choices=faults.KILLABLE)
        log = sub.add_parser("log", help="what was switched, latest first")
        log.add_argument("--limit", type=int, default=20)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self._handle(options)
        except faults.FaultError as error:
            raise CommandError(str(error)) from None
        except REDIS_FAULTS as error:
            raise CommandError(f"Redis does not answer: {error}") from None

    def _handle(self, options: dict[str, Any]) -> None:
        action = options["action"]
        if action == "set":
            for name, value in assignments_parse(options["assignments"]):
                fault = faults.fault_set(name=name, value=value, ttl=options["ttl"])
                self.stdout.write(f"{name}={fault.value} for {fault.seconds_left:g}s")
        elif action == "list":
            found = faults.fault_list()
            if options["json"]:
                self.stdout.write(json.dumps([f.as_json() for f in found], indent=2))
            elif not found:
                self.stdout.write("no fault in force")
            for fault in [] if options["json"] else found:
                self.stdout.write(
                    f"{fault.name}={fault.value}  ({fault.seconds_left:g}s left)"
                )
        elif action == "clear":
            cleared = faults.fault_clear(name=options["name"])
            self.stdout.write("cleared: " + (", ".join(cleared) or "nothing was set"))
        elif action == "kill":
            answer = faults.fault_kill(process=options["process"])
            restarter = (
                "it killed itself; its restart policy starts it again"
                if answer.get("by") == "itself"
                else "the launcher restarts it"
            )
            self.stdout.write(
                f"killed {answer['process']} (pid {answer['pid']}); {restarter}"
            )
        else:
            for entry in faults.fault_store().log_read(options["limit"]):
                when = time.strftime("%H:%M:%S", time.localtime(entry.pop("at")))
                self.stdout.write(f"{when} {json.dumps(entry)}")
