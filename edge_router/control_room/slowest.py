"""The sale's slowest Tourney requests, each linked to its trace: the end of the story.

A sale run lists each mode's slowest watched Tourney requests in its report
(`traces/slowest-requests.json`: trace id, latency, when, status) and has
`manage.py traces slowest` draw a trace view of each from the stored spans
(`traces/slowest/<trace_id>/index.html`, the report's own waterfall, and
`traces/slowest/slowest-segments.json`: which ones the store had). The control room
reads those files (no Django in the edge): the report of the sale it runs or ran,
else the newest report under the reports directory that has them. Each request
links to its view, served by the admin listener under
`/_edge/control/traces/<report>/<trace_id>`, and to Jaeger's UI when JAEGER_UI_URL
names one (docker compose).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from edge_router.control_room.settings import ControlSettings

REQUESTS_FILE = Path("traces") / "slowest-requests.json"
VIEWS_DIR = Path("traces") / "slowest"
SEGMENTS_FILE = VIEWS_DIR / "slowest-segments.json"
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
# A report is a directory right under the reports directory: `sale-<timestamp>`.
REPORT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
# The line `sale run` says first, naming its report.
REPORT_LINE = re.compile(r"sale run: report in (\S+)")


def report_named(line: str) -> str | None:
    """The report directory a line of `sale run`'s output names, if it does."""
    found = REPORT_LINE.search(line)
    return found.group(1) if found else None


def _report_dir(settings: ControlSettings, name: str) -> Path | None:
    if not REPORT_NAME.fullmatch(name):
        return None
    path = settings.reports_dir / name
    return path if path.is_dir() else None


def slowest_report(
    settings: ControlSettings, sale: dict[str, Any] | None
) -> Path | None:
    """The report whose slowest requests the panel lists: the control room's sale
    once it has listed them, else the newest report that has."""
    candidates: list[Path] = []
    named = Path(str((sale or {}).get("report") or ""))
    if named.name and named.parent.resolve() == settings.reports_dir.resolve():
        candidates.append(named)
    if settings.reports_dir.is_dir():
        candidates += sorted(settings.reports_dir.glob("sale-*"), reverse=True)
    for candidate in candidates:
        if (candidate / REQUESTS_FILE).is_file():
            return candidate
    return None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def slowest_list(
    settings: ControlSettings, sale: dict[str, Any] | None
) -> dict[str, Any]:
    """{"report", "running", "source", "requests": [{mode, trace_id, ms, start,
    status, found, view, jaeger}]}, each mode's slowest first."""
    running = bool(sale and sale.get("state") == "running")
    report = slowest_report(settings, sale)
    doc: dict[str, Any] = {
        "report": report.name if report else None,
        "running": running,
        "source": None,
        "requests": [],
    }
    if report is None:
        return doc
    listed = _read_json(report / REQUESTS_FILE) or {}
    explained = _read_json(report / SEGMENTS_FILE) or {}
    doc["source"] = explained.get("source")
    found = {
        str(row.get("trace_id")): row
        for rows in (explained.get("modes") or {}).values()
        for row in rows
        if row.get("found")
    }
    for mode, rows in listed.items():
        for row in sorted(rows, key=lambda r: float(r.get("ms", 0)), reverse=True):
            trace_id = str(row.get("trace_id", ""))
            if not TRACE_ID.fullmatch(trace_id):
                continue
            has_view = trace_id in found and trace_view(settings, report.name, trace_id)
            doc["requests"].append(
                {
                    "mode": mode,
                    "trace_id": trace_id,
                    "ms": float(row.get("ms", 0)),
                    "start": row.get("start"),
                    "status": row.get("status"),
                    "found": bool(has_view),
                    "view": f"traces/{report.name}/{trace_id}" if has_view else None,
                    "jaeger": (
                        f"{settings.jaeger_ui_url}/trace/{trace_id}"
                        if settings.jaeger_ui_url
                        else None
                    ),
                }
            )
    return doc


def trace_view(settings: ControlSettings, report: str, trace_id: str) -> Path | None:
    """The trace view `traces slowest` drew for `trace_id` in `report`, or None
    (a name that is no report or no trace id is None too: no path is built from
    it)."""
    directory = _report_dir(settings, report)
    if directory is None or not TRACE_ID.fullmatch(trace_id):
        return None
    view = directory / VIEWS_DIR / trace_id / "index.html"
    return view if view.is_file() else None
