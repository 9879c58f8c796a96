"""Log lines that carry the trace: one format for every process of the stack.

    2026-12-06T10:00:00.123Z INFO shop.services trace_id=4bf9…4736 span_id=00f0…02b7 msg

`trace_id` and `span_id` are the current span's (32 and 16 hex digits), or `-` outside
any trace. The time is UTC with milliseconds. `manage.py traces show <trace-id>` finds
a trace's lines by `trace_id=<id>` in every process's log (docs/guides/tracing.md).

The ids are read by a logging Filter on the handler, when the line is written, on the
thread that logs it: whichever logger the line comes from (Django, Celery, a library)
it gets them. Which process installs it how:

- Django services and commands: `common.settings.LOGGING` (`logging_dict`);
- Celery workers: `celery_logging_install()` (Celery replaces the root handlers with
  its own; ours are put back on them once it has);
- the edge (no Django): `logging_install()` at start-up;
- gunicorn's access log: `common.gunicorn_logging` (the ids are kept in the WSGI
  environ by `common.middleware.TraceIdMiddleware` while the span is current).

No Django, no Celery at import: the edge imports this module.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from opentelemetry import trace

LOG_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s trace_id=%(trace_id)s span_id=%(span_id)s "
    "%(message)s"
)
NO_ID = "-"
# The keys under which the WSGI environ keeps a request's ids for the access log.
ENVIRON_TRACE_ID = "otel.trace_id"
ENVIRON_SPAN_ID = "otel.span_id"


def iso_now() -> str:
    """Now as the log lines write it: UTC, milliseconds, `Z`."""
    return iso_time(time.time())


def iso_time(seconds: float) -> str:
    whole = int(seconds)
    millis = int((seconds - whole) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


def current_ids() -> tuple[str, str]:
    """The current span's trace and span ids as hex, or `-` twice outside a trace."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return NO_ID, NO_ID
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


class TraceContextFilter(logging.Filter):
    """Puts `trace_id` and `span_id` on every record (a record that has them keeps
    them: a line logged for another request than the current one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "trace_id"):
            record.trace_id, record.span_id = current_ids()
        return True


class TraceFormatter(logging.Formatter):
    """LOG_FORMAT with ISO-8601 UTC times; a record without ids (a handler that
    lacks the filter) gets `-`."""

    def __init__(self, fmt: str = LOG_FORMAT) -> None:
        super().__init__(fmt)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return iso_time(record.created)

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "trace_id"):
            record.trace_id = record.span_id = NO_ID
        return super().format(record)


def logging_dict(level: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` (Django's LOGGING): the console, our format."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"trace": {"()": TraceContextFilter}},
        "formatters": {"trace": {"()": TraceFormatter}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "trace",
                "filters": ["trace"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {"django.db.backends": {"level": "WARNING"}},
    }


def handler_adopt(handler: logging.Handler) -> None:
    """Our filter and format on an existing handler (Celery's, uvicorn's)."""
    if not any(isinstance(f, TraceContextFilter) for f in handler.filters):
        handler.addFilter(TraceContextFilter())
    handler.setFormatter(TraceFormatter())


def logging_install(level: str = "INFO", *, adopt: tuple[str, ...] = ()) -> None:
    """Our format for a process without Django: a stderr handler on the root logger
    (unless it has one already), and our filter and format on the handlers of the
    loggers named in `adopt` (uvicorn's own, which do not propagate)."""
    root = logging.getLogger()
    if not root.handlers:
        handler: logging.Handler = logging.StreamHandler()
        handler_adopt(handler)
        root.addHandler(handler)
        root.setLevel(level.upper())
    for name in adopt:
        for handler in logging.getLogger(name).handlers:
            handler_adopt(handler)


def celery_logging_install() -> None:
    """A Celery worker's lines (its own and its tasks') in our format, with ids."""
    from celery import signals

    def adopt(logger: logging.Logger, **_: Any) -> None:
        for handler in logger.handlers:
            handler_adopt(handler)

    signals.after_setup_logger.connect(adopt, weak=False)
    signals.after_setup_task_logger.connect(adopt, weak=False)
