"""`python -m loadtest run [options]` (`make sale`): the flash sale's load test.

    python -m loadtest run [--mode legacy|strangler] [--units 300] [options]

Legacy, then strangler (or the `--mode`s given): each mode reset, loaded through the
edge, drained and reconciled; then the report in `reports/sale-<timestamp>/`.
Exit 0 when every order is accounted for, 1 when one was lost, duplicated or
oversold, 2 when the run could not complete. `manage.py sale run` is the same
command, handed over here.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from typing import Any

from common import cpus
from loadtest.arrivals import PROCESSES
from loadtest.config import MODES, Endpoints, RunOptions, fulfillment_concurrency
from loadtest.faults import FaultSpecError, ScheduledFault, fault_spec_parse


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


def _arrival_process(raw: str) -> str:
    if raw not in PROCESSES:
        raise argparse.ArgumentTypeError(
            f"{raw!r} is not one of {', '.join(PROCESSES)}"
        )
    return raw


PHASE_FLAGS = frozenset(
    {"--warmup", "--baseline", "--ramp", "--hold", "--fade", "--after"}
)
# (option, type, default, help): the load of each mode; defaults fit a 2-core laptop.
# 1,200 buyers at 60/s for 300 rods: the rush offers 4 times what the warehouse packs
# (15/s) and sells out in ~5 s; three in four buyers find it sold out, as in a real
# flash sale. The Tourney page 25 times a second (cheap enough for the shop on 2
# shared cores) over the 42 s sale window (20 s of arrivals, 22 s after them, the
# whole drain) makes 1,050 samples; the 24 s baseline 600.
LOAD_ARGUMENTS: tuple[tuple[str, Any, Any, str], ...] = (
    ("--warmup", _positive(float, 0), 5.0, "seconds of browsers before the baseline"),
    ("--baseline", _positive(float, 1), 24.0, "seconds without the sale"),
    ("--buyers", _positive(int, 1), 1200, "Muskie buyers arriving (open loop)"),
    ("--arrival-rate", _positive(float, 0.1), 60.0, "buyers arriving a second"),
    ("--arrival-process", _arrival_process, "uniform", "uniform or poisson arrivals"),
    ("--after", _positive(float, 0), 22.0, "seconds watched after the last arrival"),
    ("--tourney-rate", _positive(float, 0.1), 25.0, "Tourney page fetches a second"),
    ("--ramp", _positive(float, 1), 5.0, "--closed-loop: seconds to the peak"),
    ("--hold", _positive(float, 1), 40.0, "--closed-loop: seconds at the peak"),
    ("--fade", _positive(float, 0), 10.0, "--closed-loop: seconds to leave"),
    (
        "--peak-buyers",
        _positive(int, 1),
        60,
        "--closed-loop: buyers at the peak",
    ),
    ("--browsers", _positive(int, 0), 5, "customers browsing the shop"),
    ("--tourney-buyers", _positive(int, 0), 3, "customers buying the Tourney rod"),
    ("--websocket-share", _share, 0.8, "share of buyers following by websocket"),
    ("--follow-timeout", _positive(float, 1), 60.0, "seconds a buyer follows an order"),
    ("--max-attempts", _positive(int, 1), 4, "tries per buyer (a first and retries)"),
)


def _fault(raw: str) -> ScheduledFault:
    try:
        return fault_spec_parse(raw)
    except FaultSpecError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mode",
        choices=MODES,
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
    parser.add_argument(
        "--closed-loop",
        action="store_true",
        help="Locust's closed-loop buyers (ramp, hold, fade), not arrivals",
    )
    parser.add_argument(
        "--repeat", type=_positive(int, 1), default=1,
        help="rounds of the modes, alternating; the report gives median and spread",
    )  # fmt: skip
    parser.add_argument("--reports-dir", default="reports")
    parser.add_argument(
        "--no-start",
        action="store_true",
        help="fail rather than start the stack when it does not answer",
    )
    parser.add_argument("--no-traces", action="store_true", help="skip traces sale")
    parser.add_argument(
        "--fault", type=_fault, action="append", default=[], metavar="SPEC",
        help="a fault inside each mode's sale: NAME[=VALUE]@+10s[/8s] or "
        "kill:PROCESS@+15s (docs/guides/faults.md)",
    )  # fmt: skip
    parser.add_argument(
        "--chaos", action="store_true",
        help="every fault class once, one after the other, inside each sale",
    )  # fmt: skip
    parser.add_argument(
        "--edge-engine",
        choices=("python", "nginx"),
        default=os.environ.get("EDGE_ENGINE", "") or "python",
        help="the edge's engine (default $EDGE_ENGINE, else python)",
    )
    parser.add_argument(
        "--no-source-addresses",
        action="store_true",
        help="every buyer from 127.0.0.1 (the edge's per-client limit then applies)",
    )
    for name in ("edge", "shop", "orders", "warehouse"):
        parser.add_argument(
            f"--{name}-url", help=f"default ${name.upper()}_URL or its _PORT"
        )


def run_options_from(options: dict[str, Any]) -> tuple[RunOptions, Endpoints]:
    """The runner's RunOptions and Endpoints from the parsed command line."""
    load = {}
    for flag, *_ in LOAD_ARGUMENTS:
        name = flag[2:].replace("-", "_")
        # --hold 40 is LoadOptions(hold_seconds=40); --browsers 40 is browsers=40.
        field = f"{name}_seconds" if flag in PHASE_FLAGS else name
        load[field] = options[name]
    load["source_addresses"] = not options["no_source_addresses"]
    load["closed_loop"] = options["closed_loop"]
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
        edge_engine=options["edge_engine"],
        repeat=options["repeat"],
        faults=tuple(options["fault"]),
        chaos=options["chaos"],
    )
    return run, endpoints


def parser_build() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    add_run_arguments(sub.add_parser("run", help="load-test the sale (make sale)"))
    return parser


def _refusal() -> str | None:
    """Why the run cannot start here (a missing package, a bad SALE_PATH_CPUS)."""
    missing = [
        m for m in ("locust", "matplotlib") if importlib.util.find_spec(m) is None
    ]
    if missing:
        return (
            f"sale run needs {', '.join(missing)}: "
            "make install (requirements/loadtest.in, locked in requirements/all.txt)"
        )
    try:
        cpus.sale_path_cpus()
    except cpus.CpusError as error:
        return str(error)
    return None


def main(argv: list[str] | None = None) -> int:
    options = vars(parser_build().parse_args(argv))
    refusal = _refusal()
    if refusal:
        sys.stderr.write(f"{refusal}\n")
        return 2
    from loadtest import runner

    run_options, endpoints = run_options_from(options)
    code = runner.run(run_options, endpoints)
    if code:
        sys.stderr.write(
            "the sale run found lost, duplicated or oversold orders\n"
            if code == runner.EXIT_INVARIANT
            else "the sale run could not complete\n"
        )
    return code
