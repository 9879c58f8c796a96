"""A Celery worker's heartbeat file: the cheap liveness probe compose runs.

`celery inspect ping` as a healthcheck starts a Python with Celery and Django loaded
and broadcasts through Redis, every 30 s, in every worker's container; the age of a
file costs a `stat`. The file (`WORKER_HEARTBEAT_FILE`, unset: none) is touched every
few seconds by a step of the worker's *consumer*, which runs only while the worker is
connected to the broker and taking messages: when the connection is lost or the
worker shuts down the step stops and removes the file. A missing or stale file is a
worker that takes no work.

    app = Celery(...); heartbeat_file_register(app=app)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from celery import Celery, bootsteps

# Well inside the probes' 30 s of allowed age.
HEARTBEAT_INTERVAL_S = 5.0


class HeartbeatFile(bootsteps.StartStopStep):
    """Touches the worker's heartbeat file while its consumer runs."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.path = Path(parent.app.conf.worker_heartbeat_file or "")
        self.tref: Any = None

    def include_if(self, parent: Any) -> bool:
        return bool(parent.app.conf.worker_heartbeat_file)

    def start(self, parent: Any) -> None:
        self._touch()
        self.tref = parent.timer.call_repeatedly(HEARTBEAT_INTERVAL_S, self._touch)

    def stop(self, parent: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None
        self.path.unlink(missing_ok=True)

    shutdown = stop

    def _touch(self) -> None:
        self.path.touch()


def heartbeat_file_register(*, app: Celery) -> None:
    """Add the heartbeat step to `app`'s workers (it does nothing unless
    `worker_heartbeat_file`, from WORKER_HEARTBEAT_FILE, names a file)."""
    app.steps["consumer"].add(HeartbeatFile)
