"""Tracing for test processes: spans to a directory of the test's own, flushed fast."""

from __future__ import annotations

from pathlib import Path

from observability.store import FileSpanStore

# A path an operator keeps out of the traces (OTEL_PYTHON_EXCLUDED_URLS): no page of
# the stack, so that no other test's request is left untraced by it.
EXCLUDED_BY_CONFIG = "/not-traced-by-config/"


def traced_env(directory: Path) -> dict[str, str]:
    """The environment that makes a process write its spans under `directory`.

    As an operator debugging would set it: every request the edge sees traced (the
    route table's default ratio replaced by 1; behaviours with a ratio of their own
    keep it), the request headers that carry secrets
    captured as span attributes (so the tests see that their values never reach a
    span), and one path of its own excluded from tracing.
    """
    return {
        "TRACES_DIR": str(directory),
        # Each process's output in `<directory>/logs/<process>.log`, as `make demo`
        # keeps them under .data/logs/ (`traces show` reads them).
        "LOGS_DIR": str(directory / "logs"),
        "OTEL_SDK_DISABLED": "false",
        "OTEL_TRACES_EXPORTER": "",
        # Export each batch a tenth of a second after its spans end.
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "TRACES_SAMPLE_RATIO": "1",
        "OTEL_PYTHON_EXCLUDED_URLS": EXCLUDED_BY_CONFIG,
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST": (
            "authorization,cookie,user-agent"
        ),
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE": (
            "set-cookie,content-type"
        ),
    }


def span_store(directory: Path) -> FileSpanStore:
    return FileSpanStore(directory)
