"""`python manage.py traces show | compare | find | sale`: the stack's traces.

traces show TRACE_ID                one trace as a waterfall, then its log lines
traces compare                      place a legacy and a strangler Muskie purchase
traces compare --path legacy        only the legacy one (no edge/orders needed)
traces compare TRACE_A TRACE_B      two traces already in the store
traces find --path /shop/rods/muskie-casting-rod/ --mode legacy --last 10m
traces sale --report reports/sale-<ts>/ --last 15m
traces slowest --requests FILE --report DIR    the sale's slowest watched requests

`traces sale` is what the sale's load test calls: keep its arguments and its
`trace-segments.json` as docs/guides/tracing.md describes them.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.console import Console
from rich.table import Table

from observability.completeness import Completeness, purchases_completeness
from observability.logs import log_lines_of
from observability.model import Trace
from observability.purchase import (
    Purchase,
    StackUnavailable,
    edge_mode_get,
    edge_mode_set,
    purchase_legacy,
    purchase_strangler,
    purchase_trace_complete,
    url_answers,
)
from observability.queries import (
    PURCHASE_PATHS,
    entry_path,
    entry_status,
    purchases_find,
    segment_percentiles,
    traces_find,
    window_start_ns,
)
from observability.report import Compared, ms, report_write
from observability.slowest import slowest_write
from observability.store import (
    SpanStore,
    StoreUnavailable,
    TraceNotFound,
    span_store,
    trace_wait,
)
from observability.terminal import (
    log_lines_table,
    trace_waterfall_table,
    waterfalls_print,
)

PATHS = ("legacy", "strangler")
TRACE_ID = re.compile(r"[0-9a-f]{32}")


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


class Command(BaseCommand):
    help = "Compare, find and summarise the stack's traces (docs/guides/tracing.md)."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        show = actions.add_parser(
            "show", help="one trace as a waterfall, then its processes' log lines"
        )
        show.add_argument("trace_id", metavar="TRACE_ID")
        compare = actions.add_parser("compare", help="two purchases, side by side")
        compare.add_argument("trace_ids", nargs="*", metavar="TRACE_ID")
        compare.add_argument(
            "--path",
            choices=PATHS,
            action="append",
            help="the purchase(s) to place (default: legacy and strangler)",
        )
        compare.add_argument(
            "--report-dir", type=Path, help="default reports/traces-<ts>/"
        )
        find = actions.add_parser("find", help="the URI filter: matching traces")
        find.add_argument("--path", default="", help="a path prefix of the request")
        find.add_argument("--mode", default="", help="legacy or strangler")
        find.add_argument("--last", default="10m", help="window: 30s, 10m, 2h, 1d")
        sale = actions.add_parser("sale", help="per-segment p50/p95/p99 per path")
        sale.add_argument("--report", type=Path, required=True, metavar="DIR")
        sale.add_argument(
            "--path",
            action="append",
            help="a path prefix of the purchases, repeatable (default: "
            + " and ".join(PURCHASE_PATHS)
            + ")",
        )
        sale.add_argument("--last", default="15m", help="the load test's window")
        sale.add_argument(
            "--no-edge",
            action="store_true",
            help="purchases placed straight at the services, or through the nginx "
            "engine (it starts no trace): no edge span expected",
        )
        slowest = actions.add_parser(
            "slowest", help="a trace view and the segments of each request listed"
        )
        slowest.add_argument(
            "--requests",
            type=Path,
            required=True,
            metavar="FILE",
            help='JSON: {mode: [{"trace_id", "ms", ...}]}',
        )
        slowest.add_argument("--report", type=Path, required=True, metavar="DIR")

    def handle(self, *args: Any, **options: Any) -> None:
        # rich writes partial lines: give it the stream under Django's OutputWrapper.
        columns = shutil.get_terminal_size((160, 40)).columns
        self.console = Console(
            file=cast(IO[str], getattr(self.stdout, "_out", self.stdout)),
            width=max(120, columns),
        )
        self.store: SpanStore = span_store(
            traces_dir=settings.TRACES_DIR, jaeger_query_url=settings.JAEGER_QUERY_URL
        )
        try:
            getattr(self, f"_{options['action']}")(**options)
        except (StackUnavailable, StoreUnavailable, TraceNotFound, ValueError) as error:
            raise CommandError(str(error)) from None

    # --- show ------------------------------------------------------------------------

    def _show(self, *, trace_id: str, **_: Any) -> None:
        if not TRACE_ID.fullmatch(trace_id.strip().lower()):
            raise CommandError(
                f"{trace_id!r} is no trace id: 32 hex digits, as in a response's "
                "X-Trace-Id header or `traces find`"
            )
        try:
            trace = self.store.trace(trace_id.strip().lower())
        except TraceNotFound as error:
            raise CommandError(
                f"{error}: an unknown trace id, a request that was not sampled, or "
                "spans not flushed yet (give it a second)"
            ) from None
        self.console.print(trace_waterfall_table(trace))
        logs = Path(settings.LOGS_DIR)
        lines = log_lines_of(logs, {span.trace_id for span in trace.spans})
        self.console.print(log_lines_table(lines))
        if not lines:
            self.stdout.write(
                f"no log line names this trace in {logs}/*.log (LOGS_DIR): `make "
                "demo` keeps each process's log there"
            )

    # --- compare ---------------------------------------------------------------------

    def _compare(
        self, *, trace_ids: list[str], path: list[str] | None, **options: Any
    ) -> None:
        if len(trace_ids) > 2:
            raise CommandError("compare takes at most two trace ids")
        notes: list[str] = []
        failure = ""
        if trace_ids:
            items = [Compared(tid[:8], self.store.trace(tid)) for tid in trace_ids]
            if len(items) == 2 and items[0].trace.path != items[1].trace.path:
                items = [Compared(i.trace.path, i.trace) for i in items]
        else:
            items, failure = self._purchases(path or list(PATHS))
            if failure:
                notes.append(failure)
        waterfalls_print(items, self.console)
        directory = options.get("report_dir") or (
            settings.REPORTS_DIR / f"traces-{_timestamp()}"
        )
        report = report_write(
            Path(directory), items, notes=notes, source=self.store.describe()
        )
        self.stdout.write(f"report: {report}")
        if failure:
            raise CommandError(failure)

    def _purchases(self, paths: list[str]) -> tuple[list[Compared], str]:
        edge_up = url_answers(settings.EDGE_URL)
        items: list[Compared] = []
        failure = ""
        if "strangler" in paths:
            missing = []
            if not edge_up:
                missing.append(f"the edge (EDGE_URL={settings.EDGE_URL})")
            if not url_answers(settings.ORDERS_URL):
                missing.append(f"the orders service (ORDERS_URL={settings.ORDERS_URL})")
            if missing:
                failure = (
                    "strangler purchase not placed: nothing answers on "
                    + " nor on ".join(missing)
                    + ". Start the whole stack (`make demo`), or compare the legacy "
                    "path alone: `python manage.py traces compare --path legacy`."
                )
        if not edge_up:
            if "legacy" in paths:
                if not url_answers(settings.SHOP_URL):
                    raise StackUnavailable(
                        f"nothing answers on the edge (EDGE_URL={settings.EDGE_URL}) "
                        f"nor on the shop (SHOP_URL={settings.SHOP_URL}): start the "
                        "stack with `make demo`"
                    )
                purchase = purchase_legacy(settings.SHOP_URL)
                items.append(Compared("legacy", self._trace_of(purchase)))
            if not items:
                raise StackUnavailable(failure)
            return items, failure
        token = settings.EDGE_ADMIN_TOKEN
        before = edge_mode_get(settings.EDGE_ADMIN_URL, token=token)
        try:
            if "legacy" in paths:
                edge_mode_set(settings.EDGE_ADMIN_URL, "legacy", token=token)
                purchase = purchase_legacy(settings.EDGE_URL, through_edge=True)
                items.append(Compared("legacy", self._trace_of(purchase)))
            if "strangler" in paths and not failure:
                edge_mode_set(settings.EDGE_ADMIN_URL, "strangler", token=token)
                purchase = purchase_strangler(settings.EDGE_URL, settings.ORDERS_URL)
                items.append(Compared("strangler", self._trace_of(purchase)))
        finally:
            restored = edge_mode_set(
                settings.EDGE_ADMIN_URL,
                before["mode"],
                token=token,
                percent=before.get("percent"),
            )
            mode = restored["mode"]
            if mode == "canary":
                mode = f"canary {restored.get('percent')}%"
            self.stdout.write(f"the edge is back in {mode} mode")
        if not items:
            raise StackUnavailable(failure)
        return items, failure

    def _trace_of(self, purchase: Purchase) -> Trace:
        self.stdout.write(
            f"{purchase.path}: {purchase.status_code} {purchase.order_url} "
            f"(trace {purchase.trace_id})"
        )
        return trace_wait(
            self.store,
            purchase.trace_id,
            complete=lambda trace: purchase_trace_complete(trace, purchase),
            timeout=settings.TRACES_WAIT_SECONDS,
        )

    # --- find ------------------------------------------------------------------------

    def _find(self, *, path: str, mode: str, last: str, **_: Any) -> None:
        since = window_start_ns(last)
        found = traces_find(self.store.traces(since_ns=since), path=path, mode=mode)
        table = Table(
            title=f"{len(found)} traces, last {last}, {self.store.describe()}"
        )
        for column in ("started", "trace", "mode", "request", "status", "answer",
                       "fulfilled", "spans"):  # fmt: skip
            table.add_column(column)
        for trace in found:
            started = datetime.fromtimestamp(trace.start_ns / 1e9, UTC)
            status = entry_status(trace)
            table.add_row(
                started.strftime("%H:%M:%S.%f")[:-3],
                trace.trace_id,
                trace.mode,
                f"{trace.root.service} {entry_path(trace)}",
                ("error " if trace.has_error else "") + str(status or "-"),
                ms(trace.customer_latency_ns),
                ms(trace.fulfilled_ns),
                str(len(trace.spans)),
            )
        self.console.print(table)

    # --- slowest ---------------------------------------------------------------------

    def _slowest(self, *, requests: Path, report: Path, **_: Any) -> None:
        if not requests.is_file():
            raise CommandError(f"no such file: {requests}")
        out, found = slowest_write(self.store, requests, report_dir=report)
        self.stdout.write(f"{found} of the requests traced; written to {out}")

    # --- sale ------------------------------------------------------------------------

    def _sale(
        self,
        *,
        report: Path,
        path: list[str] | None,
        last: str,
        no_edge: bool = False,
        **_: Any,
    ) -> None:
        since = window_start_ns(last)
        paths = path or list(PURCHASE_PATHS)
        accepted, refused = purchases_find(
            self.store.traces(since_ns=since), paths=paths
        )
        stats = segment_percentiles(accepted)
        completeness = purchases_completeness(accepted, edge=not no_edge)
        report.mkdir(parents=True, exist_ok=True)
        out = report / "trace-segments.json"
        by_path = {name: sum(1 for t in accepted if t.path == name) for name in stats}
        refusals: dict[str, dict[str, int]] = {}
        for trace in refused:
            codes = refusals.setdefault(trace.path, {})
            code = str(entry_status(trace) or "none")
            codes[code] = codes.get(code, 0) + 1
        out.write_text(
            json.dumps(
                {
                    "window_start_ns": since,
                    "path": paths[0],
                    "paths": paths,
                    "source": self.store.describe(),
                    "traces": len(accepted),
                    "traces_per_path": by_path,
                    "refused_per_path": refusals,
                    "completeness": completeness.as_dict(),
                    "percentiles_ms": {
                        name: {segment: asdict(s) for segment, s in by_name.items()}
                        for name, by_name in stats.items()
                    },
                },
                indent=2,
            )
            + "\n"
        )
        for name, by_name in stats.items():
            table = Table(title=f"{name}: per-segment latency (ms)")
            for column in ("segment", "n", "p50", "p95", "p99"):
                table.add_column(
                    column, justify="left" if column == "segment" else "right"
                )
            for segment, s in by_name.items():
                table.add_row(segment, str(s.count), f"{s.p50_ms:.1f}",
                              f"{s.p95_ms:.1f}", f"{s.p99_ms:.1f}")  # fmt: skip
            self.console.print(table)
        self.stdout.write(
            f"{len(accepted)} purchases ({len(refused)} refused); percentiles "
            f"written to {out}"
        )
        self._sale_completeness(completeness)

    def _sale_completeness(self, completeness: Completeness) -> None:
        """Every answered purchase has one complete trace, or the command fails."""
        self.stdout.write(
            f"complete traces: {completeness.complete}, "
            f"incomplete: {len(completeness.incomplete)}"
        )
        if completeness.ok:
            return
        for trace_id, gaps in list(completeness.incomplete.items())[:10]:
            self.stdout.write(f"  {trace_id}: {'; '.join(gaps)}")
        raise CommandError(
            f"{len(completeness.incomplete)} purchase(s) without a complete trace"
        )
