"""`python manage.py edge ...`: parses arguments, then calls edge_router.cli."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from edge_router import cli
from edge_router.routes import RouteTableError


def _percent(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 100:
        raise argparse.ArgumentTypeError(f"a whole number 0-100, not {text!r}")
    return int(text)


class Command(BaseCommand):
    help = "Switch the edge's mode, print its route table, export it to nginx or Envoy."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(
            dest="action", required=True, parser_class=type(parser)
        )
        mode = sub.add_parser("mode", help="print or switch the mode (kept in Redis)")
        mode.add_argument("name", nargs="?", choices=["legacy", "strangler", "canary"])
        mode.add_argument("--percent", type=_percent, help="canary only: 0-100")
        routes = sub.add_parser("routes", help="print the effective route table")
        routes.add_argument("--json", action="store_true", help="as JSON")
        export = sub.add_parser(
            "export", help="write the table as nginx or Envoy config"
        )
        export.add_argument("kind", choices=cli.EXPORTS)
        export.add_argument(
            "--profile", default="strangler", help="legacy or strangler"
        )
        export.add_argument("--listen", default="127.0.0.1:8000", help="HOST:PORT")
        export.add_argument("--output", "-o", type=Path, help="file (default: stdout)")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            if action == "mode":
                if options["name"] is None:
                    if options["percent"] is not None:
                        raise cli.CliError(
                            "--percent needs a mode: edge mode canary --percent N"
                        )
                    self.stdout.write(cli.mode_show())
                else:
                    self.stdout.write(cli.mode_set(options["name"], options["percent"]))
            elif action == "routes":
                self.stdout.write(cli.routes_show(as_json=options["json"]))
            else:
                self.stdout.write(
                    cli.export(
                        options["kind"],
                        profile=options["profile"],
                        listen=options["listen"],
                        output=options["output"],
                    ),
                    ending="" if options["output"] is None else "\n",
                )
        except (cli.CliError, RouteTableError) as error:
            raise CommandError(str(error)) from None
