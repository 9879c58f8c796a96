"""The Celery settings every worker of the stack shares, read from the environment.

A service's settings module adds them to its own:

    globals().update(celery_settings(broker_url=REDIS_URL, env_prefix="ORDERS",
                                     default_queue=ORDERS_EVENTS_QUEUE))

The reliability choices (Celery's task guide) are the same everywhere: a task is
acknowledged after it ran, a worker lost mid-task hands it back, a worker takes one
message at a time.
"""

from __future__ import annotations

from typing import Any

from common.env import env_int, env_str
from common.redis_client import redis_timeouts


def celery_settings(
    *,
    broker_url: str,
    env_prefix: str,
    default_queue: str,
    annotations: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The CELERY_* settings of one service; `env_prefix` names its variables
    (`<prefix>_VISIBILITY_TIMEOUT`, `<prefix>_RESTORE_INTERVAL`)."""
    return {
        "CELERY_BROKER_URL": broker_url,
        "CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP": True,
        "CELERY_BROKER_TRANSPORT_OPTIONS": {
            # Above any task's run time and retry countdown (the fulfillment step:
            # 10 s at the warehouse + 10 s at the orders service, a countdown of
            # 30 s at most): a message a live worker holds is not handed to a
            # second one. One a killed worker held comes back after it: a minute,
            # not the hour Kombu defaults to, or a killed worker's order would wait
            # an hour (`faults kill fulfillment-worker`, docs/guides/faults.md).
            # Were a live worker's message handed out again, the task is
            # idempotent (the warehouse packs an order_ref once).
            "visibility_timeout": env_int(
                f"{env_prefix}_VISIBILITY_TIMEOUT", 60, minimum=1
            ),
            # How often a worker looks for messages a dead worker held (older than
            # the visibility timeout) and puts them back on the queue.
            "unacked_restore_interval": env_int(
                f"{env_prefix}_RESTORE_INTERVAL", 10, minimum=1
            ),
            "unacked_restore_throttle": 1,
            # A publish (the relay's, a worker's result) on a Redis that accepts and
            # never answers would wait forever: Kombu's default is no timeout. A
            # worker's BRPOP is safe with it: the event loop reads the reply only
            # once the socket is readable, and BRPOP answers within brpop_timeout.
            **redis_timeouts(),
        },
        "CELERY_TASK_ACKS_LATE": True,
        "CELERY_TASK_REJECT_ON_WORKER_LOST": True,
        "CELERY_WORKER_PREFETCH_MULTIPLIER": 1,
        "CELERY_TASK_IGNORE_RESULT": True,
        "CELERY_TASK_DEFAULT_QUEUE": default_queue,
        "CELERY_WORKER_HIJACK_ROOT_LOGGER": False,
        "CELERY_TASK_ANNOTATIONS": dict(annotations or {}),
        # The liveness file a worker touches while it takes messages (compose's
        # healthcheck; common/celery_heartbeat.py). Empty: none.
        "CELERY_WORKER_HEARTBEAT_FILE": env_str("WORKER_HEARTBEAT_FILE", ""),
    }
