"""`faults kill` with no launcher: the process kills itself, its supervisor restarts it.

Under `make demo` the launcher (common/harness/supervisor.py) takes the kill requests.
Under docker compose nothing does, so each killable service names itself,
`FAULTS_PROCESS=<its Procfile name>`, and its main process runs a watcher thread
(started by gunicorn's `when_ready` hook in gunicorn.conf.py, Celery's `worker_ready`,
the relay's command): it says it is there (`<prefix>:alive:<name>`, renewed each
poll), takes the requests left for it (`<prefix>:kill-self:<name>`), answers, and
sends SIGKILL to its own process group, as a crash or the OOM killer would.

The container runs an init (`init: true`: Docker's tini, which starts the service's
command in a process group of its own): the group dies, tini exits 137, and compose's
`restart: unless-stopped` starts the container again, as the launcher restarts a
process (`docker compose kill` would not do: compose never restarts a container it was
told to kill). Without an init the service's main process is PID 1, which a signal
from inside its container cannot kill: there, the watcher's process exits by itself
when it is PID 1 and refuses the kill, saying why, when it is not.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from typing import Any

from common.fault_catalogue import KILLABLE, FaultError
from common.faults import FaultStore, fault_store
from common.redis_client import REDIS_FAULTS

logger = logging.getLogger(__name__)
ALIVE_SECONDS = 5.0
# The exit status of a process killed by SIGKILL, as a shell and Docker report it.
KILLED_STATUS = 128 + signal.SIGKILL


def kill_watch_from_env(*, poll: float = 0.5) -> threading.Thread | None:
    """The watcher of FAULTS_PROCESS, if the environment names one (compose does)."""
    process = os.environ.get("FAULTS_PROCESS", "").strip()
    if not process:
        return None
    if process not in KILLABLE:
        raise FaultError(
            f"FAULTS_PROCESS={process!r} is no killable process: {', '.join(KILLABLE)}"
        )
    return kill_watch_start(process=process, store=fault_store(), poll=poll)


def kill_watch_start(
    *, process: str, store: FaultStore, poll: float = 0.5
) -> threading.Thread:
    """Watch for kill requests of `process` in a daemon thread of this process."""
    thread = threading.Thread(
        target=_watch, args=(process, store, poll), name="faults-kill", daemon=True
    )
    thread.start()
    logger.info("faults: %s (pid %s) takes its own kill requests", process, os.getpid())
    return thread


def _watch(process: str, store: FaultStore, poll: float) -> None:
    queue = f"kill-self:{process}"
    while True:
        with contextlib.suppress(*REDIS_FAULTS):
            store.alive(process, ttl=ALIVE_SECONDS)
            for request in store.kill_requests_take(queue=queue):
                if time.time() - float(request.get("at", 0)) <= 15:
                    kill_self(process=process, store=store, request=request)
        time.sleep(poll)


def kill_self(*, process: str, store: FaultStore, request: dict[str, Any]) -> None:
    """Answer the request, then die by SIGKILL with the whole process group."""
    pid, group = os.getpid(), os.getpgrp()
    if group == 1 and pid != 1:
        answer: dict[str, Any] = {
            "error": f"{process} cannot kill itself: its container has no init, and "
            "a signal from inside cannot kill PID 1 (add `init: true` to the service)"
        }
        store.kill_answer(str(request["id"]), answer)
        return
    answer = {"process": process, "pid": pid, "by": "itself"}
    store.kill_answer(str(request["id"]), answer)
    store.log("killed", process=process, pid=pid, by="itself")
    logger.warning(
        "faults: %s (pid %s) kills itself on request (manage.py faults kill): "
        "its supervisor restarts it",
        process, pid,
    )  # fmt: skip
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    if pid == 1:
        os._exit(KILLED_STATUS)  # PID 1 is the container: its end is the kill
    os.killpg(group, signal.SIGKILL)


def kill_watch_on_worker_ready() -> None:
    """Start the watcher in a Celery worker's main process once it is ready."""
    from celery import signals

    def ready(**_: object) -> None:
        kill_watch_from_env()

    signals.worker_ready.connect(ready, weak=False)
