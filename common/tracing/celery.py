"""Tracing for Celery: producer and consumer spans, a worker's set-up after the fork,
and a plain process (the outbox relay) that publishes.
"""

from __future__ import annotations

from typing import Any

from common.tracing.core import (
    instrument_clients,
    instrument_once,
    tracing_enabled,
    tracing_setup,
)
from common.tracing.logs import celery_logging_install


def instrument_celery() -> None:
    """Producer spans on publish and consumer spans on run, linked by the message."""
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    instrument_once(CeleryInstrumentor())


def instrument_celery_worker(service_name: str) -> None:
    """Tracing for a Celery worker: call where the Celery app is built.

    Prefork children set up in `worker_process_init` (after the fork, see
    tracing_setup); solo and thread pools on their first `task_prerun`, a receiver
    connected before the instrumentation's own so the first task is traced too.
    Its log lines, traced or not, are in the stack's one format (tracing/logs.py).
    """
    celery_logging_install()
    if not tracing_enabled():
        return
    from celery import signals

    def setup(**_: Any) -> None:
        tracing_setup(service_name)

    signals.worker_process_init.connect(setup, weak=False)
    signals.task_prerun.connect(setup, weak=False)
    instrument_clients()
    instrument_celery()


def instrument_process(service_name: str, *, edge_mode: str | None = None) -> None:
    """A plain process that does not fork (outbox relay, a command): all at once."""
    tracing_setup(service_name, edge_mode=edge_mode)
    instrument_clients()
    instrument_celery()
