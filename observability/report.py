"""The HTML comparison report: one self-contained file, inline CSS and SVG, no CDN.

Two (or one, or more) traces side by side: their waterfalls on ONE time axis, a
service map per path, and tables of time per segment and per service with the
difference between the paths. The customer-facing latency (request until answer)
and the time until fulfilled are both shown, so the strangler's trade (a fast
accept, an asynchronous fulfilment) is visible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from observability.model import Trace
from observability.service_map import ServiceMap, service_map
from observability.spans import SEGMENTS

SERVICE_COLOURS = {
    "client": "#64748b",
    "edge": "#7c3aed",
    "shop": "#2563eb",
    "orders-api": "#0891b2",
    "outbox-relay": "#ca8a04",
    "orders-worker": "#ea580c",
    "fulfillment-worker": "#db2777",
    "warehouse": "#16a34a",
}
NODE_COLOURS = {"database": "#475569", "cache": "#b91c1c", "remote": "#94a3b8"}
LABEL_WIDTH = 380
BAR_WIDTH = 720
ROW_HEIGHT = 18

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;
color:#0f172a;background:#f8fafc}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.muted{color:#64748b}.small{font-size:12px}
.cards{display:flex;gap:16px;flex-wrap:wrap}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:12px 16px;
flex:1 1 300px}
.card h3{margin:0 0 6px;font-size:15px}.figure{font-size:20px;font-weight:600}
.note{background:#fef3c7;border:1px solid #f59e0b;border-radius:6px;padding:8px 12px;
margin:12px 0}
svg{background:#fff;border:1px solid #e2e8f0;border-radius:8px;display:block;
margin:8px 0 16px}
svg text{font:11px system-ui,sans-serif;fill:#0f172a}
svg .axis{fill:#64748b}
table{border-collapse:collapse;background:#fff;margin:8px 0 16px;min-width:560px}
th,td{border:1px solid #e2e8f0;padding:4px 10px;text-align:left}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.slower{color:#b91c1c}.faster{color:#15803d}
.legend span{display:inline-block;margin-right:12px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;
margin-right:4px;vertical-align:middle}
"""


@dataclass(frozen=True)
class Compared:
    """One trace of the comparison and what it stands for ("legacy", "strangler")."""

    label: str
    trace: Trace


def ms(nanoseconds: float | None) -> str:
    return "–" if nanoseconds is None else f"{nanoseconds / 1e6:.1f} ms"


def _colour(service: str) -> str:
    return SERVICE_COLOURS.get(service, "#94a3b8")


def _difference(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return "<td class='num'>–</td>"
    delta = b - a
    css = "slower" if delta > 0 else "faster" if delta < 0 else ""
    sign = "+" if delta > 0 else ""
    return f"<td class='num {css}'>{sign}{delta / 1e6:.1f} ms</td>"


def _ticks(scale_ns: int) -> list[int]:
    """Axis ticks every 1, 2 or 5 times a power of ten, some six across the scale."""
    target = max(scale_ns / 6, 1)
    magnitude = 10 ** math.floor(math.log10(target))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= target)
    return list(range(0, scale_ns + 1, int(step)))


def waterfall_svg(item: Compared, scale_ns: int) -> str:
    trace = item.trace
    rows = list(trace.walk())
    height = 34 + ROW_HEIGHT * len(rows) + 10
    width = LABEL_WIDTH + BAR_WIDTH + 20

    def x(ns: int) -> float:
        return LABEL_WIDTH + BAR_WIDTH * max(0, ns - trace.start_ns) / scale_ns

    parts = [
        f"<svg class='waterfall' data-trace='{trace.trace_id}' width='{width}' "
        f"height='{height}' viewBox='0 0 {width} {height}' role='img' "
        f"aria-label='{escape(item.label)} waterfall'>"
    ]
    for tick in _ticks(scale_ns):
        tx = LABEL_WIDTH + BAR_WIDTH * tick / scale_ns
        parts.append(
            f"<line x1='{tx:.1f}' y1='20' x2='{tx:.1f}' y2='{height - 6}' "
            "stroke='#e2e8f0'/>"
            f"<text class='axis' x='{tx + 2:.1f}' y='14'>{tick / 1e6:g} ms</text>"
        )
    markers = [("answer", trace.customer_latency_ns, "#0f172a")]
    if trace.fulfilled_ns is not None:
        markers.append(("fulfilled", trace.fulfilled_ns, "#16a34a"))
    for name, offset, colour in markers:
        mx = x(trace.start_ns + offset)
        parts.append(
            f"<line class='marker-{name}' x1='{mx:.1f}' y1='20' x2='{mx:.1f}' "
            f"y2='{height - 6}' stroke='{colour}' stroke-dasharray='4 3'>"
            f"<title>{name}: {ms(offset)}</title></line>"
        )
    critical = {p.span.span_id for p in trace.critical_path if not p.waiting}
    for index, (span, depth) in enumerate(rows):
        y = 28 + index * ROW_HEIGHT
        label = escape(f"{span.service}: {span.label}"[:60])
        bar_x, bar_end = x(span.start_ns), x(span.end_ns)
        link = " ↪" if trace.relation.get(span.span_id) == "link" else ""
        outline = (
            " stroke='#0f172a' stroke-width='1.2'" if span.span_id in critical else ""
        )
        parts.append(
            f"<g class='span' data-service='{escape(span.service)}'>"
            f"<title>{escape(span.service)} · {escape(span.label)} · "
            f"{ms(span.duration_ns)} · {span.kind}</title>"
            f"<text x='{6 + depth * 12}' y='{y + 12}'>{label}{link}</text>"
            f"<rect x='{bar_x:.1f}' y='{y + 3}' width='{max(bar_end - bar_x, 1):.1f}' "
            f"height='11' rx='2' fill='{_colour(span.service)}'{outline}/>"
            f"<text class='axis' x='{min(bar_end + 4, width - 60):.1f}' "
            f"y='{y + 12}'>{span.duration_ns / 1e6:.1f}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def service_map_svg(item: Compared, graph: ServiceMap) -> str:
    depths = graph.depth()
    columns: dict[int, list[str]] = {}
    # Services above the stores they use, so the edges between services stay short.
    for node in sorted(graph.nodes, key=lambda n: graph.nodes[n] != "service"):
        columns.setdefault(depths[node], []).append(node)
    col_width, row_height = 240, 100
    width = 40 + col_width * len(columns)
    height = 40 + row_height * max(len(nodes) for nodes in columns.values())
    where: dict[str, tuple[float, float]] = {}
    for column, nodes in sorted(columns.items()):
        for row, node in enumerate(nodes):
            where[node] = (70 + column * col_width, 50 + row * row_height)
    marker_id = f"arrow-{item.trace.trace_id[:8]}"
    parts = [
        f"<svg class='service-map' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' role='img' "
        f"aria-label='{escape(item.label)} service map'>"
        f"<defs><marker id='{marker_id}' viewBox='0 0 10 10' refX='10' refY='5' "
        "markerWidth='7' markerHeight='7' orient='auto-start-reverse'>"
        "<path d='M0,0 L10,5 L0,10 z' fill='#475569'/></marker></defs>"
    ]
    for edge in graph.edges:
        (x1, y1), (x2, y2) = where[edge.source], where[edge.target]
        dx, dy = x2 - x1, y2 - y1
        length = max(math.hypot(dx, dy), 1)
        sx, sy = x1 + dx / length * 30, y1 + dy / length * 30
        ex, ey = x2 - dx / length * 32, y2 - dy / length * 32
        dash = " stroke-dasharray='5 4'" if edge.asynchronous else ""
        parts.append(
            f"<g class='edge'><line x1='{sx:.1f}' y1='{sy:.1f}' x2='{ex:.1f}' "
            f"y2='{ey:.1f}' stroke='#475569' stroke-width='1.4'{dash} "
            f"marker-end='url(#{marker_id})'/>"
            f"<text x='{(sx + ex) / 2:.1f}' y='{(sy + ey) / 2 - 5:.1f}' "
            f"text-anchor='middle'>{edge.count}× · {ms(edge.mean_ns)}</text></g>"
        )
    for node, kind in graph.nodes.items():
        cx, cy = where[node]
        fill = NODE_COLOURS.get(kind) or _colour(node)
        first, _, rest = node.partition(" ")
        lines = f"<tspan x='{cx}' dy='0'>{escape(first)}</tspan>" + (
            f"<tspan x='{cx}' dy='13'>{escape(rest)}</tspan>" if rest else ""
        )
        parts.append(
            f"<g class='node' data-kind='{kind}'><title>{escape(node)}</title>"
            f"<circle cx='{cx}' cy='{cy}' r='26' fill='{fill}' fill-opacity='0.15' "
            f"stroke='{fill}' stroke-width='2'/>"
            f"<text x='{cx}' y='{cy + 42}' text-anchor='middle'>{lines}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(
    table_id: str,
    caption: str,
    rows: list[tuple[str, list[float | None]]],
    items: Sequence[Compared],
) -> str:
    head = "".join(f"<th class='num'>{escape(i.label)}</th>" for i in items)
    diff_head = (
        f"<th class='num'>{escape(items[1].label)} − {escape(items[0].label)}</th>"
        if len(items) == 2
        else ""
    )
    body = []
    for name, values in rows:
        cells = "".join(f"<td class='num'>{ms(v)}</td>" for v in values)
        diff = _difference(values[0], values[1]) if len(items) == 2 else ""
        body.append(f"<tr><th scope='row'>{escape(name)}</th>{cells}{diff}</tr>")
    return (
        f"<table id='{table_id}'><caption class='muted small'>{escape(caption)}"
        f"</caption><thead><tr><th></th>{head}{diff_head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )


# The nginx engine starts no trace: the visitor's context goes on, the origin's span
# is the root (docs/guides/edge-router.md, two engines).
STARTS_AT_ORIGIN = (
    "<div class='muted small starts-at-origin'>no edge span: the trace starts at the "
    "origin (an edge on the nginx engine starts no trace)</div>"
)


def _cards(items: Sequence[Compared]) -> str:
    """One summary card per trace: its two headline figures."""
    return "".join(
        f"<div class='card'><h3>{escape(i.label)} <span class='muted small'>"
        f"mode {escape(i.trace.mode)}</span></h3>"
        f"<div class='muted small'>trace <code>{i.trace.trace_id}</code></div>"
        f"<div>customer-facing latency <span class='figure customer-latency'>"
        f"{ms(i.trace.customer_latency_ns)}</span></div>"
        f"<div>time until fulfilled <span class='figure fulfilled'>"
        f"{ms(i.trace.fulfilled_ns)}</span></div>"
        f"<div class='muted small'>{len(i.trace.spans)} spans · "
        f"{escape(', '.join(i.trace.services))}</div>"
        f"{'' if 'edge' in i.trace.services else STARTS_AT_ORIGIN}</div>"
        for i in items
    )


def _tables(items: Sequence[Compared]) -> tuple[str, str, str]:
    """The latency, per-segment and per-service tables, trace against trace."""
    timing_rows: list[tuple[str, list[float | None]]] = [
        ("customer-facing latency", [i.trace.customer_latency_ns for i in items]),
        ("time until fulfilled", [i.trace.fulfilled_ns for i in items]),
        ("purchase complete", [i.trace.completed_ns for i in items]),
        ("whole trace", [i.trace.duration_ns for i in items]),
    ]
    segment_times = [i.trace.segment_times() for i in items]
    segment_rows: list[tuple[str, list[float | None]]] = [
        (label, [times[key] for times in segment_times])
        for key, label in SEGMENTS
        if any(times[key] for times in segment_times)
    ]
    busy = [i.trace.service_times() for i in items]
    services = list(dict.fromkeys(s for i in items for s in i.trace.services))
    service_rows: list[tuple[str, list[float | None]]] = [
        (name, [times.get(name, 0) for times in busy]) for name in services
    ]
    latency_table = _table(
        "latency",
        "request until answer; until the warehouse packed the order; until the "
        "purchase was complete (answered, or recorded fulfilled); the last span",
        timing_rows,
        items,
    )
    segments_table = _table(
        "segments",
        "wall-clock time on the critical path; the segments add up to the purchase "
        "complete",
        segment_rows,
        items,
    )
    services_table = _table(
        "services",
        "each service's spans less the time their children took",
        service_rows,
        items,
    )
    return latency_table, segments_table, services_table


INTRO = (
    "The Muskie purchase, trace against trace: where the time went and who waited "
    "for the warehouse."
)


def render_html(
    items: Sequence[Compared],
    *,
    notes: Sequence[str] = (),
    source: str = "",
    intro: str = INTRO,
) -> str:
    if not items:
        raise ValueError("nothing to report: no trace")
    scale = max(i.trace.duration_ns for i in items) or 1
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    cards = _cards(items)
    legend = "".join(
        f"<span><i style='background:{colour}'></i>{escape(name)}</span>"
        for name, colour in SERVICE_COLOURS.items()
    )
    waterfalls = "".join(
        f"<h3>{escape(i.label)}</h3>{waterfall_svg(i, scale)}" for i in items
    )
    maps = "".join(
        f"<div><h3>{escape(i.label)}</h3>{service_map_svg(i, service_map(i.trace))}"
        "</div>"
        for i in items
    )
    latency_table, segments_table, services_table = _tables(items)
    from_source = f" from {escape(source)}" if source else ""
    note_html = "".join(f"<p class='note'>{escape(note)}</p>" for note in notes)
    title = " vs ".join(i.label for i in items)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Traces: {escape(title)}</title><style>{CSS}</style></head>
<body><main>
<h1>Traces: {escape(title)}</h1>
<p class="muted small">Generated {generated}{from_source}.
{escape(intro)}</p>
{note_html}
<section id="summary" class="cards">{cards}</section>
<section id="timings"><h2>Latency</h2>
{latency_table}
</section>
<section id="waterfalls"><h2>Waterfalls (one time axis)</h2>
<p class="legend small">{legend} <span class="muted">outlined: on the critical path;
dashed lines: the answer (black) and the fulfilment (green); ↪ a link, not a
parent</span></p>
{waterfalls}</section>
<section id="service-maps"><h2>Service maps</h2>
<p class="muted small">Nodes are services and the stores they use; an edge is the
calls between two, with their count and mean latency (dashed: asynchronous).</p>
<div class="cards">{maps}</div></section>
<section id="segments-section"><h2>Time per segment (critical path)</h2>
{segments_table}
</section>
<section id="services-section"><h2>Time per service (busy)</h2>
{services_table}
</section>
</main></body></html>
"""


def report_write(
    directory: Path,
    items: Sequence[Compared],
    *,
    notes: Sequence[str] = (),
    source: str = "",
    intro: str = INTRO,
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "index.html"
    html = render_html(items, notes=notes, source=source, intro=intro)
    path.write_text(html, encoding="utf-8")
    return path
