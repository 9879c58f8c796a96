"""What every benchmark writes at its end: the machine, and a dated JSON report."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports"


def machine_describe() -> dict[str, Any]:
    """Print the load average (figures from a busy machine are suspect) and return the
    machine's description for the report."""
    load = os.getloadavg()
    print(
        f"machine load average (1/5/15 min) at the end: "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} cores"
    )
    return {
        "cpus": os.cpu_count() or 0,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_end": [round(x, 2) for x in load],
    }


def report_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def report_write(name: str, stamp: str, report: dict[str, Any]) -> Path:
    """`reports/bench-<name>-<stamp>.json`; its path is printed."""
    REPORTS.mkdir(exist_ok=True)
    path = REPORTS / f"bench-{name}-{stamp}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"report: {path.relative_to(ROOT)}")
    return path
