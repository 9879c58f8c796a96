"""Tracing for test processes: spans to a directory of the test's own, flushed fast."""

from __future__ import annotations

from pathlib import Path

from observability.store import FileSpanStore


def traced_env(directory: Path) -> dict[str, str]:
    """The environment that makes a process write its spans under `directory`."""
    return {
        "TRACES_DIR": str(directory),
        "OTEL_SDK_DISABLED": "false",
        "OTEL_TRACES_EXPORTER": "",
        # Export each batch a tenth of a second after its spans end.
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }


def span_store(directory: Path) -> FileSpanStore:
    return FileSpanStore(directory)
