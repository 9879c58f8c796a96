"""`python manage.py sale open|close|status|rebuild <product-slug>`: run a flash sale.

    sale open muskie-casting-rod --units 50 [--sku ROD-MUSKIE] [--unless-open]
                                         (also builds the sale's static minisite)
    sale build-site muskie-casting-rod [--dir DIR]   build the minisite again (deploy)
    sale close muskie-casting-rod
    sale status muskie-casting-rod       the board's figures and the ledger (JSON)
    sale rebuild muskie-casting-rod      rebuild the Redis counter from the database
    sale run [--mode legacy|strangler] [options]   load-test the sale (loadtest/)

`sale run` is `python -m loadtest run`, handed over as it is (its options are the
load test's): the load test meets the stack over HTTP and `manage.py` subprocesses,
like an operator, and no service imports it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from common.errors import ApplicationError
from orders_api.models import Sale
from orders_api.sales import selectors
from orders_api.sales import services as sales
from orders_api.sales.ledger import sale_ledger
from orders_api.sales.site import sale_site_build

ROOT = Path(__file__).resolve().parents[3]


def loadtest_argv(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "loadtest", "run", *args]


def loadtest_env() -> dict[str, str]:
    """Ours, with the checkout on the path (manage.py may run from elsewhere)."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


class Command(BaseCommand):
    help = "Open, close, inspect a flash sale of one product."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        opening = sub.add_parser("open", help="take units of shop stock; open the sale")
        opening.add_argument("slug")
        opening.add_argument("--units", type=int, required=True)
        opening.add_argument("--sku", help="the shop's SKU (known for the demo's)")
        opening.add_argument(
            "--unless-open",
            action="store_true",
            help="do nothing (and succeed) when a sale of it is already open",
        )
        building = sub.add_parser(
            "build-site",
            help="write the sale's static minisite (the edge's static origin)",
        )
        building.add_argument("slug")
        building.add_argument(
            "--dir", type=Path, help="where (default: SALE_SITE_DIR)", default=None
        )
        running = sub.add_parser(
            "run", help="load-test the sale: python -m loadtest run --help"
        )
        running.add_argument("args", nargs=argparse.REMAINDER)
        for name, text in (
            ("close", "give unsold units back to the shop; close the sale"),
            ("status", "print the sale's figures and its ledger as JSON"),
            ("rebuild", "rebuild the Redis counter from the database"),
        ):
            sub.add_parser(name, help=text).add_argument("slug")

    def run_from_argv(self, argv: list[str]) -> None:
        # `manage.py sale run ...` becomes `python -m loadtest run ...`: the same
        # process id, output and exit code, every option read by the load test.
        if argv[2:3] == ["run"]:
            os.execve(  # noqa: S606 - this interpreter, the load test
                sys.executable, loadtest_argv(argv[3:]), loadtest_env()
            )
        super().run_from_argv(argv)

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"].replace("-", "_")
        try:
            getattr(self, f"do_{action}")(options)
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.detail}") from None

    def do_run(self, options: dict[str, Any]) -> None:
        """From call_command("sale", "run", ...): the load test in a child."""
        done = subprocess.run(  # noqa: S603 - this interpreter, the load test
            loadtest_argv(options["args"]), cwd=ROOT, env=loadtest_env()
        )
        if done.returncode:
            raise CommandError("the sale run failed", returncode=done.returncode)

    def do_open(self, options: dict[str, Any]) -> None:
        slug = options["slug"]
        if options["units"] < 1:
            raise CommandError("--units must be at least 1")
        if options["unless_open"]:
            current = selectors.sale_current(slug=slug)
            if current is not None and current.status == current.Status.OPEN:
                self.stdout.write(
                    f"{current.name}: a sale is already open; nothing done"
                )
                self._site(current, None)
                return
        sale = sales.sale_open(slug=slug, units=options["units"], sku=options["sku"])
        self.stdout.write(
            f"{sale.name}: sale open with {sale.units_allocated} units "
            f"(taken from the shop's stock)"
        )
        self._site(sale, None)

    def do_build_site(self, options: dict[str, Any]) -> None:
        sale = selectors.sale_current(slug=options["slug"])
        if sale is None:
            raise CommandError(f"no sale of {options['slug']!r} ever opened")
        self._site(sale, options["dir"])

    def _site(self, sale: Sale, directory: Path | None) -> None:
        page = sale_site_build(sale=sale, directory=directory)
        self.stdout.write(f"{sale.name}: static minisite written to {page}")

    def do_close(self, options: dict[str, Any]) -> None:
        sale = sales.sale_close(slug=options["slug"])
        self.stdout.write(
            f"{sale.name}: sale closed; {sale.units_returned} unsold units went back "
            f"to the shop, {sale.units_allocated} sold"
        )

    def do_status(self, options: dict[str, Any]) -> None:
        sale = selectors.sale_current(slug=options["slug"])
        if sale is None:
            raise CommandError(f"no sale of {options['slug']!r} ever opened")
        figures = {**selectors.sale_board(sale=sale), "ledger": sale_ledger(sale=sale)}
        self.stdout.write(json.dumps(figures, indent=2))

    def do_rebuild(self, options: dict[str, Any]) -> None:
        sale = selectors.sale_current(slug=options["slug"])
        if sale is None:
            raise CommandError(f"no sale of {options['slug']!r} ever opened")
        remaining = sales.sale_counter_rebuild(sale=sale)
        self.stdout.write(f"{sale.name}: counter rebuilt, {remaining} units left")
