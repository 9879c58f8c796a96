"""A supervisor: run processes, restart the one that dies and say so, kill on request.

`make demo`'s launcher runs the Procfile under it (common/devstack.py), and a test
runs a stack's processes under it to see a kill healed. Once a process exits
unasked (a crash, `kill -9`, `manage.py faults kill NAME`), it is started again
after `restart_delay` seconds, as systemd or a container runtime would, and the
console says so; a process that dies `max_restarts` times within `window` seconds
is given up on, and the whole stack stops (a crash loop is a bug to read, not to
hide). With a fault store (common/faults.py), it takes the kill requests of
`fault_kill` (SIGKILL to the process's group), answers them, and counts each
restart there, for `faults log` and the sale's report.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Mapping

from common.faults import FaultStore
from common.harness.processes import Process
from common.redis_client import REDIS_FAULTS

Say = Callable[[str], None]
# A kill request older than this was meant for a launcher that is gone.
KILL_REQUEST_MAX_AGE = 15.0
# How long the launcher says it is there (`faults kill` asks it, not the process):
# renewed every tick, and longer than a restart blocks the ticks.
ALIVE_SECONDS = 90.0


def exit_described(code: int | None) -> str:
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit {code}"


class Supervisor:
    def __init__(
        self,
        processes: Mapping[str, Process],
        *,
        say: Say,
        store: FaultStore | None = None,
        restart_delay: float = 1.0,
        max_restarts: int = 5,
        window: float = 60.0,
        poll: float = 0.5,
        start_timeout: float = 60.0,
    ) -> None:
        # By the name a kill request gives (the Procfile's: `fulfillment-worker`).
        self.processes = dict(processes)
        self.say = say
        self.store = store
        self.restart_delay = restart_delay
        self.max_restarts = max_restarts
        self.window = window
        self.poll = poll
        self.start_timeout = start_timeout
        self.restarts: dict[str, list[float]] = {name: [] for name in self.processes}
        self.gave_up: str | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def by_name(self, name: str) -> Process | None:
        return self.processes.get(name)

    # --- the life of the supervisor --------------------------------------------------

    def start(self) -> Supervisor:
        """Start every process not running yet, then watch them in a thread."""
        self._alive()
        for process in self.processes.values():
            if not process.running():
                process.start(timeout=self.start_timeout)
        self._thread = threading.Thread(
            target=self._loop, name="supervisor", daemon=True
        )
        self._thread.start()
        return self

    def wait(self) -> int:
        """Until stop() (0), or a process is given up on (1)."""
        while not self._stopping.wait(0.5):
            pass
        return 1 if self.gave_up else 0

    def stop_soon(self) -> None:
        """From a signal handler: wait() returns, the caller then calls stop()."""
        self._stopping.set()

    def stop(self) -> None:
        """Stop watching, then stop every process at once (their groups)."""
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.start_timeout + 5)
        stoppers = [threading.Thread(target=p.stop) for p in self.processes.values()]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()

    def _loop(self) -> None:
        while not self._stopping.wait(self.poll):
            self.tick()

    # --- one look at the processes ---------------------------------------------------

    def tick(self) -> None:
        self._alive()
        self._kill_requests()
        for name, process in self.processes.items():
            if self._stopping.is_set():
                return
            if not process.running():
                self._restart(name, process)

    def _restart(self, name: str, process: Process) -> None:
        code = process.process.returncode if process.process else None
        now = time.monotonic()
        recent = [t for t in self.restarts[name] if now - t < self.window]
        if len(recent) >= self.max_restarts:
            self.gave_up = name
            self.say(
                f"{name} died {len(recent) + 1} times in {self.window:.0f}s "
                f"({exit_described(code)}): giving up, stopping the stack"
            )
            self._stopping.set()
            return
        self.restarts[name] = [*recent, now]
        self.say(
            f"{name} exited ({exit_described(code)}): restarting it "
            f"in {self.restart_delay:g}s, as a supervisor would "
            f"(restart {len(recent) + 1} in the last {self.window:.0f}s)"
        )
        time.sleep(self.restart_delay)
        try:
            process.start(timeout=self.start_timeout)
        except Exception as error:
            self.say(f"{name} did not come back: {error}")
            return
        self.say(f"{name} restarted (pid {process.pid})")
        self._record("restart", name, pid=process.pid)

    def _record(self, event: str, name: str, **fields: object) -> None:
        if self.store is None:
            return
        try:
            if event == "restart":
                self.store.restart_record(name)
            self.store.log(event, process=name, **fields)
        except REDIS_FAULTS:
            pass

    def _alive(self) -> None:
        if self.store is not None:
            with contextlib.suppress(*REDIS_FAULTS):
                self.store.alive("launcher", ttl=ALIVE_SECONDS)

    def _kill_requests(self) -> None:
        if self.store is None:
            return
        try:
            requests = self.store.kill_requests_take()
        except REDIS_FAULTS:
            return
        for request in requests:
            if time.time() - float(request.get("at", 0)) > KILL_REQUEST_MAX_AGE:
                continue
            self._kill(str(request["id"]), str(request["process"]))

    def _kill(self, request_id: str, name: str) -> None:
        process = self.by_name(name)
        assert self.store is not None
        if process is None or not process.running():
            answer: dict[str, object] = {"error": f"this launcher runs no {name}"}
        else:
            pid = process.pid
            process.kill()
            self.say(f"{name} (pid {pid}) killed on request (manage.py faults kill)")
            answer = {"process": name, "pid": pid}
        with contextlib.suppress(*REDIS_FAULTS):
            self.store.kill_answer(request_id, answer)
