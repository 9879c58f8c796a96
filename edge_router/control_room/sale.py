"""A sale started from the control room: `python -m loadtest run --no-start ...`,
one at a time for the whole edge, its progress kept in Redis for every viewer.

The worker that starts it owns the subprocess: it holds a lock key (renewed while
the run lasts), streams the run's lines into a capped list and its state into a
key, and releases the lock when the run ends. Any worker can stop it: SIGINT to the
run's process group, as Ctrl-C in a terminal would (the run then clears up).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from typing import Any

import redis
import redis.asyncio as aioredis

from edge_router.control_room.commands import command_env, shown
from edge_router.control_room.settings import ControlSettings
from edge_router.control_room.slowest import report_named

logger = logging.getLogger("edge_router.control_room")
LOG_LINES = 200
LOCK_SECONDS = 30
# (flag, kind, low, high): what the page may set; loadtest's parser checks again.
OPTIONS: dict[str, tuple[type, float, float]] = {
    "units": (int, 1, 100_000),
    "warmup": (float, 0, 600),
    "baseline": (float, 1, 600),
    "buyers": (int, 1, 100_000),
    "arrival-rate": (float, 0.1, 1000),
    "after": (float, 0, 600),
    "tourney-rate": (float, 0.1, 1000),
    "browsers": (int, 0, 1000),
    "tourney-buyers": (int, 0, 100),
    "drain-timeout": (float, 1, 3600),
}
SALE_MODES = ("legacy", "strangler", "both")


class SaleRefused(ValueError):
    """Options the page does not offer, or a sale already running (`conflict`)."""

    def __init__(self, message: str, *, conflict: bool = False) -> None:
        super().__init__(message)
        self.conflict = conflict


def sale_argv(doc: dict[str, Any]) -> list[str]:
    """`-m loadtest run --no-start ...` from {"mode", "traces", "<flag>": n, ...}."""
    unknown = sorted(set(doc) - {"mode", "traces", *OPTIONS})
    if unknown:
        raise SaleRefused(f"unknown options: {unknown}; known: {sorted(OPTIONS)}")
    argv = ["-m", "loadtest", "run", "--no-start"]
    mode = doc.get("mode", "both")
    if mode not in SALE_MODES:
        raise SaleRefused(f"mode must be one of {', '.join(SALE_MODES)}")
    if mode != "both":
        argv += ["--mode", mode]
    for flag, (kind, low, high) in OPTIONS.items():
        value = doc.get(flag)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SaleRefused(f"{flag} must be a number")
        if kind is int and value != int(value):
            raise SaleRefused(f"{flag} must be a whole number")
        if not low <= value <= high:
            raise SaleRefused(f"{flag} must be between {low:g} and {high:g}")
        argv += [f"--{flag}", f"{kind(value):g}"]
    if doc.get("traces", True) is False:
        argv.append("--no-traces")
    return argv


class SaleRunner:
    def __init__(self, settings: ControlSettings, client: aioredis.Redis) -> None:
        self.settings = settings
        self.redis = client
        self.lock_key = f"{settings.keys}:sale:lock"
        self.state_key = f"{settings.keys}:sale"
        self.log_key = f"{settings.keys}:sale:log"
        self._owner = f"{os.getpid()}:{id(self)}"
        self._task: asyncio.Task[None] | None = None
        self._process: asyncio.subprocess.Process | None = None

    async def start(self, argv: list[str], *, who: str) -> dict[str, Any]:
        """Start the run; SaleRefused(conflict) while another one runs."""
        taken = await self.redis.set(
            self.lock_key, self._owner, nx=True, ex=LOCK_SECONDS
        )
        if not taken:
            raise SaleRefused("a sale is running already: stop it first", conflict=True)
        try:
            self._process = await asyncio.create_subprocess_exec(
                self.settings.python, *argv,
                cwd=self.settings.root, env=command_env(),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        except OSError:
            await self.redis.delete(self.lock_key)
            raise
        state = {
            "state": "running",
            "command": shown(argv),
            "who": who,
            "pid": self._process.pid,
            "started_at": time.time(),
            "code": None,
        }
        pipe = self.redis.pipeline()
        pipe.delete(self.log_key)
        pipe.set(self.state_key, json.dumps(state))
        await pipe.execute()
        self._task = asyncio.create_task(self._follow(self._process, state))
        return state

    async def _follow(
        self, process: asyncio.subprocess.Process, state: dict[str, Any]
    ) -> None:
        renew = asyncio.create_task(self._renew())
        try:
            assert process.stdout is not None
            async for raw in process.stdout:
                line = raw.decode(errors="replace").rstrip()
                if not line:
                    continue
                report = state.get("report") or report_named(line)
                with contextlib.suppress(redis.RedisError, OSError):
                    pipe = self.redis.pipeline()
                    pipe.rpush(self.log_key, line[:500])
                    pipe.ltrim(self.log_key, -LOG_LINES, -1)
                    if report != state.get("report"):
                        # Where its slowest requests will be (control_room/slowest.py).
                        state["report"] = report
                        pipe.set(self.state_key, json.dumps(state))
                    await pipe.execute()
            code = await process.wait()
        finally:
            renew.cancel()
        ended = {**state, "state": "done" if code == 0 else "failed", "code": code}
        ended["ended_at"] = time.time()
        logger.info("control room: sale ended with exit %s: %s", code, state["command"])
        with contextlib.suppress(redis.RedisError, OSError):
            await self.redis.set(self.state_key, json.dumps(ended))
            if await self.redis.get(self.lock_key) == self._owner.encode():
                await self.redis.delete(self.lock_key)

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(LOCK_SECONDS / 3)
            with contextlib.suppress(redis.RedisError, OSError):
                await self.redis.expire(self.lock_key, LOCK_SECONDS)

    async def stop(self) -> dict[str, Any] | None:
        """SIGINT to the running sale's process group; its state, or None."""
        state = await self.status()
        if state is None or state.get("state") != "running":
            return None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(int(state["pid"]), signal.SIGINT)
        return state

    async def status(self) -> dict[str, Any] | None:
        raw = await self.redis.get(self.state_key)
        return dict(json.loads(raw)) if raw else None

    async def progress(self, lines: int = 12) -> dict[str, Any] | None:
        state = await self.status()
        if state is None:
            return None
        if state.get("state") == "running" and not await self.redis.exists(
            self.lock_key
        ):
            state["state"] = "lost"  # its worker died: nobody follows it any more
        found = await self.redis.lrange(self.log_key, -lines, -1)
        state["lines"] = [
            line.decode(errors="replace") if isinstance(line, bytes) else line
            for line in found
        ]
        return state

    async def close(self) -> None:
        """The edge stops: a run it owns is interrupted and waited for (briefly)."""
        process, task = self._process, self._task
        if task is None or task.done() or process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGINT)
        try:
            await asyncio.wait_for(asyncio.shield(task), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
