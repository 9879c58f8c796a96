"""`python manage.py sale open|close|status|rebuild <product-slug>`: run a flash sale.

    sale open muskie-casting-rod --units 50 [--sku ROD-MUSKIE] [--unless-open]
    sale close muskie-casting-rod
    sale status muskie-casting-rod
    sale rebuild muskie-casting-rod      rebuild the Redis counter from the database
    sale run [--mode legacy|strangler] [options]   load-test the sale (loadtest/)

`sale run` only parses its options here; the load test lives in `loadtest/` and
meets the stack over HTTP and `manage.py` subprocesses, like an operator.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from common.errors import ApplicationError
from orders_api.sales import selectors
from orders_api.sales import services as sales


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
        add_run_arguments(sub.add_parser("run", help="load-test the sale (make sale)"))
        for name, text in (
            ("close", "give unsold units back to the shop; close the sale"),
            ("status", "print the sale's figures as JSON"),
            ("rebuild", "rebuild the Redis counter from the database"),
        ):
            sub.add_parser(name, help=text).add_argument("slug")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            getattr(self, f"do_{action}")(options)
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.detail}") from None

    def do_run(self, options: dict[str, Any]) -> None:
        needed = ("locust", "matplotlib")
        missing = [m for m in needed if importlib.util.find_spec(m) is None]
        if missing:
            raise CommandError(
                f"sale run needs {', '.join(missing)}: "
                "pip install -r requirements/dev.in (make install does)"
            )
        from common import cpus
        from loadtest import runner

        try:
            cpus.sale_path_cpus()
        except cpus.CpusError as error:
            raise CommandError(str(error)) from None
        run_options, endpoints = run_options_from(options)
        code = runner.run(run_options, endpoints, say=self._say)
        if code:
            raise CommandError(
                "the sale run found lost, duplicated or oversold orders"
                if code == runner.EXIT_INVARIANT
                else "the sale run could not complete",
                returncode=code,
            )

    def _say(self, message: str) -> None:
        self.stdout.write(message)
        self.stdout.flush()

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
                return
        sale = sales.sale_open(slug=slug, units=options["units"], sku=options["sku"])
        self.stdout.write(
            f"{sale.name}: sale open with {sale.units_allocated} units "
            f"(taken from the shop's stock)"
        )

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
        self.stdout.write(json.dumps(selectors.sale_board(sale=sale), indent=2))

    def do_rebuild(self, options: dict[str, Any]) -> None:
        sale = selectors.sale_current(slug=options["slug"])
        if sale is None:
            raise CommandError(f"no sale of {options['slug']!r} ever opened")
        remaining = sales.sale_counter_rebuild(sale=sale)
        self.stdout.write(f"{sale.name}: counter rebuilt, {remaining} units left")


def _positive(kind: type, minimum: float) -> Any:
    def parse(raw: str) -> Any:
        try:
            value = kind(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{raw!r} is not a number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{raw} is below {minimum}")
        return value

    return parse


def _share(raw: str) -> float:
    value = _positive(float, 0)(raw)
    if value > 1:
        raise argparse.ArgumentTypeError(f"{raw} is above 1")
    return float(value)


PHASE_FLAGS = frozenset({"--warmup", "--baseline", "--ramp", "--hold", "--fade"})
# (option, type, default, help): the load of each mode; defaults fit a 2-core laptop.
LOAD_ARGUMENTS: tuple[tuple[str, Any, Any, str], ...] = (
    ("--warmup", _positive(float, 0), 5.0, "seconds of browsers before the baseline"),
    ("--baseline", _positive(float, 1), 25.0, "seconds of browsers only, no sale"),
    ("--ramp", _positive(float, 1), 5.0, "seconds for Muskie buyers to reach the peak"),
    ("--hold", _positive(float, 1), 40.0, "seconds at the peak"),
    ("--fade", _positive(float, 0), 10.0, "seconds for the buyers to leave"),
    ("--browsers", _positive(int, 0), 40, "customers browsing the shop"),
    ("--tourney-buyers", _positive(int, 0), 3, "customers buying the Tourney rod"),
    ("--peak-buyers", _positive(int, 1), 60, "Muskie buyers at the peak"),
    ("--websocket-share", _share, 0.5, "share of buyers following by websocket"),
    ("--follow-timeout", _positive(float, 1), 60.0, "seconds a buyer follows an order"),
    ("--max-attempts", _positive(int, 1), 3, "tries per buyer after a refusal"),
)


def add_run_arguments(parser: CommandParser) -> None:
    parser.add_argument(
        "--mode",
        choices=("legacy", "strangler"),
        action="append",
        help="run this mode only (default: legacy, then strangler)",
    )
    parser.add_argument(
        "--units", type=_positive(int, 1), default=300, help="Muskie rods for sale"
    )
    for flag, kind, default, text in LOAD_ARGUMENTS:
        parser.add_argument(flag, type=kind, default=default, help=text)
    parser.add_argument(
        "--drain-timeout", type=_positive(float, 1), default=120.0,
        help="seconds to wait for every accepted order to be fulfilled or failed",
    )  # fmt: skip
    parser.add_argument("--reports-dir", default="reports")
    parser.add_argument(
        "--no-start",
        action="store_true",
        help="fail rather than start the stack when it does not answer",
    )
    parser.add_argument("--no-traces", action="store_true", help="skip traces sale")
    parser.add_argument(
        "--no-source-addresses",
        action="store_true",
        help="every buyer from 127.0.0.1 (the edge's per-client limit then applies)",
    )
    for name in ("edge", "shop", "orders", "warehouse"):
        parser.add_argument(
            f"--{name}-url", help=f"default ${name.upper()}_URL or its _PORT"
        )


def run_options_from(options: dict[str, Any]) -> tuple[Any, Any]:
    """The runner's RunOptions and Endpoints from the parsed command line."""
    from loadtest.config import MODES, Endpoints, RunOptions, fulfillment_concurrency

    load = {}
    for flag, *_ in LOAD_ARGUMENTS:
        name = flag[2:].replace("-", "_")
        # --hold 40 is LoadOptions(hold_seconds=40); --browsers 40 is browsers=40.
        field = f"{name}_seconds" if flag in PHASE_FLAGS else name
        load[field] = options[name]
    load["source_addresses"] = not options["no_source_addresses"]
    endpoints = Endpoints.from_env().with_urls(
        edge=options["edge_url"],
        shop=options["shop_url"],
        orders=options["orders_url"],
        warehouse=options["warehouse_url"],
    )
    run = RunOptions(
        modes=tuple(dict.fromkeys(options["mode"] or MODES)),
        units=options["units"],
        load=load,
        drain_timeout=options["drain_timeout"],
        reports_dir=options["reports_dir"],
        start_stack=not options["no_start"],
        traces=not options["no_traces"],
        fulfillment_concurrency=fulfillment_concurrency(),
    )
    return run, endpoints
