"""Waterfalls in the terminal (rich): side by side on one time axis (`traces
compare`), or one trace in detail with its log lines (`traces show`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from observability.logs import LogLine
from observability.model import Trace
from observability.report import SERVICE_COLOURS, Compared, ms
from observability.spans import SEGMENTS


def waterfall_table(
    item: Compared, *, scale_ns: int, label_width: int, bar_width: int
) -> Table:
    trace = item.trace
    table = Table(
        title=(
            f"{item.label} ({trace.mode}) · answer {ms(trace.customer_latency_ns)}"
            f" · fulfilled {ms(trace.fulfilled_ns)}"
        ),
        caption=f"trace {trace.trace_id}",
        box=None,
        show_header=False,
        padding=0,
    )
    table.add_column(width=label_width, no_wrap=True, overflow="ellipsis")
    table.add_column(width=bar_width, no_wrap=True)
    for span, depth in trace.walk():
        start = bar_width * (span.start_ns - trace.start_ns) / scale_ns
        end = bar_width * (span.end_ns - trace.start_ns) / scale_ns
        left = min(int(start), bar_width - 1)
        length = max(1, min(math.ceil(end) - left, bar_width - left))
        bar = Text(" " * left)
        bar.append("█" * length, style=SERVICE_COLOURS.get(span.service, "grey50"))
        label = Text("  " * depth + f"{span.service}: {span.label}")
        table.add_row(label, bar)
    return table


def segments_table(items: Sequence[Compared]) -> Table:
    table = Table(title="time per segment (critical path)")
    table.add_column("segment")
    for item in items:
        table.add_column(item.label, justify="right")
    if len(items) == 2:
        table.add_column(f"{items[1].label} − {items[0].label}", justify="right")
    times = [item.trace.segment_times() for item in items]
    rows: list[tuple[str, list[int | None]]] = [
        ("customer-facing latency", [i.trace.customer_latency_ns for i in items]),
        ("time until fulfilled", [i.trace.fulfilled_ns for i in items]),
    ]
    rows += [
        (label, [t[key] for t in times])
        for key, label in SEGMENTS
        if any(t[key] for t in times)
    ]
    for name, values in rows:
        cells = [ms(v) for v in values]
        if len(values) == 2:
            a, b = values
            cells.append("–" if a is None or b is None else f"{(b - a) / 1e6:+.1f} ms")
        table.add_row(name, *cells)
    return table


def waterfalls_print(items: Sequence[Compared], console: Console | None = None) -> None:
    console = console or Console()
    scale = max(item.trace.duration_ns for item in items) or 1
    column = max(40, (console.width - 2 * (len(items) - 1)) // len(items))
    label_width = min(38, column // 2)
    grid = Table.grid(padding=(0, 2))
    for _ in items:
        grid.add_column(width=column)
    grid.add_row(
        *(
            waterfall_table(
                item,
                scale_ns=scale,
                label_width=label_width,
                bar_width=column - label_width - 1,
            )
            for item in items
        )
    )
    console.print(grid)
    console.print(segments_table(items))


def trace_waterfall_table(trace: Trace, *, bar_width: int = 60) -> Table:
    """One trace, a row a span: nesting, service, name, start offset, duration, bar."""
    scale = trace.duration_ns or 1
    table = Table(
        title=f"trace {trace.trace_id} ({trace.mode}) · {len(trace.spans)} spans · "
        f"answer {ms(trace.customer_latency_ns)} · whole {ms(trace.duration_ns)}",
        box=None,
        padding=(0, 1),
    )
    table.add_column("span", no_wrap=True, overflow="ellipsis", max_width=70)
    table.add_column("start", justify="right", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("", no_wrap=True, width=bar_width)
    for span, depth in trace.walk():
        start = bar_width * (span.start_ns - trace.start_ns) / scale
        left = min(int(start), bar_width - 1)
        end = bar_width * (span.end_ns - trace.start_ns) / scale
        length = max(1, min(math.ceil(end) - left, bar_width - left))
        bar = Text(" " * left)
        bar.append("█" * length, style=SERVICE_COLOURS.get(span.service, "grey50"))
        link = "↪ " if trace.relation.get(span.span_id) == "link" else ""
        table.add_row(
            Text("  " * depth + link + f"{span.service}: {span.label}"),
            f"+{(span.start_ns - trace.start_ns) / 1e6:.1f} ms",
            ms(span.duration_ns),
            bar,
        )
    return table


def log_lines_table(lines: Sequence[LogLine]) -> Table:
    title = f"{len(lines)} log lines of the trace"
    table = Table(title=title, box=None, padding=(0, 1))
    table.add_column("time", no_wrap=True)
    table.add_column("process", no_wrap=True)
    table.add_column("line", overflow="fold")
    for line in lines:
        table.add_row(line.time_text, line.process, Text(line.text))
    return table
