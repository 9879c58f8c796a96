"""The open-loop crowds, each in a process of its own (asyncio and aiohttp, no Locust):

    python -m loadtest.openloop OPTIONS.json

- `watcher`: the Tourney page, `tourney_rate` times a second from the start of the
  load to its end, each request sent when due and timed from then; every sample
  keeps the answer's `X-Trace-Id`.
- `buyers`: `buyers` flash-sale buyers arriving at `arrival_rate` a second from the
  start of the "arrivals" phase, each once (loadtest/buyer.py).

Like `python -m loadtest.load` it prints a JSON progress line a second, waits for the
purchases still under way, and writes `samples-<crowd>.csv`, `attempts-<crowd>.json`
and `phases-<crowd>.json` (with the process's own CPU seconds: the generator's cost
is part of the report) into `out_dir`.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
import zlib
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import aiohttp

from loadtest.arrivals import (
    arrival_schedule,
    fixed_rate_schedule,
    latency_from_due_ms,
)
from loadtest.buyer import Buyer
from loadtest.config import TOURNEY_PAGE, TRACE_ID_HEADER, LoadOptions
from loadtest.journal import Journal
from loadtest.phases import phase_at, phases

TOURNEY = "tourney page"
# The watcher's connections: more than a slow shop can hold answers for at 40/s.
WATCHER_CONNECTIONS = 512


def _say(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def cpu_seconds() -> float:
    """This process's CPU time so far (user + system, every thread)."""
    times = os.times()
    return times.user + times.system


class Crowd:
    """What one open-loop process keeps: its journal, its tasks, its counters."""

    def __init__(self, options: LoadOptions, started: float) -> None:
        self.options = options
        self.started = started
        self.journal = Journal()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.arrived = 0
        self.accepted = 0
        self.late_ms = 0.0

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def dispatch(self, due_times: list[float], start: Any) -> None:
        """Start `start(due)` at each due time, whether or not earlier ones are done."""
        for due in due_times:
            wait = due - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
            else:
                self.late_ms = max(self.late_ms, -wait * 1000)
            self.arrived += 1
            self.spawn(start(due))

    def count_accepted(self) -> None:
        self.accepted += 1


async def _watch_one(crowd: Crowd, session: aiohttp.ClientSession, due: float) -> None:
    status, trace_id = 0, ""
    try:
        async with session.get(TOURNEY_PAGE, allow_redirects=False) as response:
            await response.read()
            status, trace_id = (
                response.status,
                response.headers.get(TRACE_ID_HEADER, ""),
            )
    except (aiohttp.ClientError, OSError):  # TimeoutError is an OSError
        pass
    ms = latency_from_due_ms(due=due, answered=time.time())
    crowd.journal.sample(due, TOURNEY, status, ms, status == 200, trace_id)


async def _watcher(crowd: Crowd, end: float) -> None:
    options = crowd.options
    due = fixed_rate_schedule(rate=options.tourney_rate, start=crowd.started, end=end)
    async with aiohttp.ClientSession(
        base_url=options.host,
        connector=aiohttp.TCPConnector(limit=WATCHER_CONNECTIONS),
        timeout=aiohttp.ClientTimeout(total=options.request_timeout),
        headers={"User-Agent": "lee.fishing Tourney watcher (open loop)"},
    ) as session:
        await crowd.dispatch(due, lambda at: _watch_one(crowd, session, at))
        await _finish(crowd)


async def _buyers(crowd: Crowd) -> None:
    options = crowd.options
    (arrivals,) = [p for p in phases(options) if p.name == "arrivals"]
    due = arrival_schedule(
        count=options.buyers,
        rate=options.arrival_rate,
        start=crowd.started + arrivals.start,
        process=options.arrival_process,
        seed=zlib.crc32(options.run_tag.encode()),
    )
    numbers = iter(range(1, options.buyers + 1))

    def buyer(at: float) -> Coroutine[Any, Any, str]:
        return Buyer(
            options=options,
            journal=crowd.journal,
            number=next(numbers),
            due=at,
            on_accepted=crowd.count_accepted,
        ).run()

    await crowd.dispatch(due, buyer)


async def _finish(crowd: Crowd) -> None:
    """Wait for what is under way (purchases, late answers), within a bound."""
    options = crowd.options
    waited = options.follow_timeout + 3 * options.request_timeout
    deadline = time.time() + waited
    while crowd.tasks and time.time() < deadline:
        _say(event="finishing", crowd=options.crowd, at=time.time(),
             purchases=len(crowd.tasks))  # fmt: skip
        await asyncio.sleep(1.0)
    for task in list(crowd.tasks):
        task.cancel()


async def _progress(crowd: Crowd) -> None:
    options = crowd.options
    seen = 0
    while True:
        await asyncio.sleep(1.0)
        samples = crowd.journal.samples[seen:]
        seen += len(samples)
        failed = sum(1 for s in samples if not s[4])
        _say(
            event="progress",
            crowd=options.crowd,
            at=time.time(),
            phase=phase_at(options, time.time() - crowd.started),
            users=len(crowd.tasks),
            rps=len(samples),
            fail_ratio=round(failed / len(samples), 4) if samples else 0.0,
            accepted=crowd.accepted,
            arrived=crowd.arrived,
        )


async def _run(options: LoadOptions, out: Path) -> Crowd:
    if options.start_at:
        await asyncio.sleep(max(0.0, options.start_at - time.time()))
    # The phases run from the agreed second, not from when this process woke: a
    # late start shows as requests sent late (and timed from when they were due),
    # never as a window that slid.
    started = options.start_at or time.time()
    crowd = Crowd(options, started)
    planned = phases(options)
    end = started + planned[-1].end
    windows = [
        {"name": p.name, "start": started + p.start, "end": started + p.end}
        for p in planned
    ]
    phases_path = out / f"phases-{options.crowd}.json"
    phases_path.write_text(json.dumps({"started": started, "phases": windows}))
    _say(event="started", at=started, crowd=options.crowd)
    progress = asyncio.get_running_loop().create_task(_progress(crowd))
    if options.crowd == "watcher":
        await _watcher(crowd, end)
    else:
        await _buyers(crowd)
        # The load of this crowd lasts as long as its phases, like every crowd's.
        await asyncio.sleep(max(0.0, end - time.time()))
    load_end = time.time()
    await _finish(crowd)
    progress.cancel()
    kept = json.loads(phases_path.read_text())
    kept.update(load_end=load_end, ended=time.time())
    phases_path.write_text(json.dumps(kept, indent=1))
    return crowd


def run(options: LoadOptions) -> int:
    out = Path(options.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # A socket per buyer connection: lift the soft limit on open files to the hard.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    crowd = asyncio.run(_run(options, out))
    crowd.journal.write(out, suffix=f"-{options.crowd}")
    phases_path = out / f"phases-{options.crowd}.json"
    kept = json.loads(phases_path.read_text())
    kept["generator"] = {
        # The whole process's, its start included.
        "cpu_seconds": round(cpu_seconds(), 3),
        "wall_seconds": round(kept["ended"] - kept["started"], 3),
        "requests": len(crowd.journal.samples),
        "arrived": crowd.arrived,
        # How late the generator sent its latest request (0: always on time).
        "worst_start_lag_ms": round(crowd.late_ms, 1),
    }
    phases_path.write_text(json.dumps(kept, indent=1))
    _say(event="done", crowd=options.crowd, at=time.time(),
         requests=len(crowd.journal.samples))  # fmt: skip
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m loadtest.openloop OPTIONS.json\n")
        return 2
    options = LoadOptions.from_json(json.loads(Path(argv[0]).read_text()))
    return run(options)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
