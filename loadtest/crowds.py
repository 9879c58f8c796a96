"""Running the crowds of one mode: one process per crowd, started together on the
same clock, followed line by line, then merged into one set of samples, attempts and
phases.

The shoppers (Locust, loadtest/load.py), the Tourney watcher and the flash-sale
buyers (open loop, loadtest/openloop.py; Locust's closed loop with --closed-loop)
are played by processes of their own: one loop busy with the rush would delay the
very Tourney requests the run times. Their progress comes as JSON lines on stdout,
read as they are printed.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from loadtest.config import CROWDS, OPEN_LOOP_CROWDS, LoadOptions
from loadtest.context import RunContext
from loadtest.journal import (
    Sample,
    attempts_read,
    attempts_write,
    samples_read,
    samples_write,
)
from loadtest.operations import ROOT, StackError
from loadtest.sampler import Sampler

# Whose phases are the run's: the Tourney watcher's, which starts on the agreed second.
TIMED_CROWD = "watcher"
# The crowds' processes are given this long to start (import Locust, build users)
# before the load starts, for both at the same second.
LOAD_START_SECONDS = 3.0
Lines = queue.Queue[tuple[str, str | None]]


def crowds_run(
    ctx: RunContext, mode: str, options: LoadOptions, out: Path, sampler: Sampler
) -> float:
    """Every crowd of one mode, to its end; the peak load average on the way."""
    processes: dict[str, subprocess.Popen[str]] = {}
    logs: list[IO[bytes]] = []
    lines: Lines = queue.Queue()
    # A whole second: the phases' boundaries and the watcher's due times (integer
    # seconds and multiples of 1/rate from it) then fall on the same floats.
    start_at = float(math.ceil(time.time() + LOAD_START_SECONDS))
    try:
        for crowd in CROWDS:
            crowd_options = replace(options, crowd=crowd, start_at=start_at)
            processes[crowd] = _crowd_start(ctx, crowd, crowd_options, out, logs)
            threading.Thread(
                target=_lines_into, args=(crowd, processes[crowd], lines), daemon=True
            ).start()
        peak_load = _follow(ctx, mode, processes, lines, sampler)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
            process.wait()
        for log in logs:
            log.close()
    _failure_raise(processes, out)
    _crowds_merge(out)
    return peak_load


def _crowd_start(
    ctx: RunContext,
    crowd: str,
    options: LoadOptions,
    out: Path,
    logs: list[IO[bytes]],
) -> subprocess.Popen[str]:
    options_file = out / f"load-options-{crowd}.json"
    options_file.write_text(json.dumps(options.to_json(), indent=1))
    log = (out / f"load-{crowd}.log").open("wb")
    logs.append(log)
    open_loop = crowd in OPEN_LOOP_CROWDS and not (
        crowd == "buyers" and options.closed_loop
    )
    module = "loadtest.openloop" if open_loop else "loadtest.load"
    return subprocess.Popen(
        [
            *_cpus_prefix(ctx, crowd),
            *(sys.executable, "-m", module, str(options_file)),
        ],
        cwd=ROOT,
        env={**ctx.env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )


def _failure_raise(processes: dict[str, subprocess.Popen[str]], out: Path) -> None:
    failed = [(c, p.returncode) for c, p in processes.items() if p.returncode]
    # The one that failed first, not the one stopped because of it (SIGKILL).
    failed.sort(key=lambda failure: failure[1] == -signal.SIGKILL)
    if failed:
        crowd, code = failed[0]
        raise StackError(
            f"the load generator ({crowd}) failed ({code}); see {out}/load-{crowd}.log"
        )


def _cpus_prefix(ctx: RunContext, crowd: str) -> list[str]:
    """The flash-sale buyers stand for customers' own devices: on the sale path's
    CPUs (SALE_PATH_CPUS), not on the ones the shop is left with."""
    if crowd != "buyers" or not ctx.sale_path_cpus:
        return []
    return ["taskset", "-c", ctx.sale_path_cpus]


def _follow(
    ctx: RunContext,
    mode: str,
    processes: dict[str, subprocess.Popen[str]],
    lines: Lines,
    sampler: Sampler,
) -> float:
    """Until every crowd's process is done (or one has failed)."""
    peak_load = 0.0
    last_said = 0.0
    latest: dict[str, dict[str, Any]] = {}
    running = set(processes)
    while running:
        crowd, line = lines.get()
        if line is None:
            running.discard(crowd)
            if processes[crowd].wait() != 0:
                return peak_load  # crowds_run reports it and stops the others
            continue
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            peak_load = max(peak_load, os.getloadavg()[0])
            if event.get("event") not in {"progress", "finishing"}:
                continue
            latest[crowd] = event
            if time.monotonic() - last_said >= 2.0:
                ctx.say(progress_line(mode, _crowds_joined(latest), sampler))
                last_said = time.monotonic()
    return peak_load


def _crowds_merge(out: Path) -> None:
    """The crowds' samples, attempts and phases as one: samples.csv, attempts.json,
    phases.json (phases as the watcher kept them, on the clock of the requests the
    run times; the load ended when the last crowd's did)."""
    samples: list[Sample] = []
    attempts = []
    kept = {}
    for crowd in CROWDS:
        samples += samples_read(out / f"samples-{crowd}.csv")
        attempts += attempts_read(out / f"attempts-{crowd}.json")
        kept[crowd] = json.loads((out / f"phases-{crowd}.json").read_text())
    samples.sort(key=lambda sample: sample[0])
    samples_write(out / "samples.csv", samples)
    attempts_write(out / "attempts.json", attempts)
    phases = {
        **kept[TIMED_CROWD],
        "load_end": max(p["load_end"] for p in kept.values()),
        "ended": max(p["ended"] for p in kept.values()),
        "crowds": {
            crowd: {
                **{k: p[k] for k in ("started", "load_end", "ended")},
                "generator": p.get("generator", {}),
            }
            for crowd, p in kept.items()
        },
    }
    (out / "phases.json").write_text(json.dumps(phases, indent=1))


def progress_line(mode: str, event: dict[str, Any], sampler: Sampler) -> str:
    latest = sampler.latest()
    depth = latest.queue_depth if latest else 0
    in_flight = latest.in_flight if latest else 0
    if event.get("event") == "finishing":
        head = f"finishing {event.get('purchases', 0)} purchases under way"
    else:
        head = (
            f"{event.get('phase', event.get('event', '')):8} "
            f"users {event.get('users', 0):4d}  rps {event.get('rps', 0):6.1f}  "
            f"failures {event.get('fail_ratio', 0):6.1%}  "
            f"accepted {event.get('accepted', 0):4d}"
        )
    return (
        f"[{mode}] {head}  queue {depth:4d}  "
        f"warehouse in-flight {in_flight}  load {os.getloadavg()[0]:.1f}"
    )


def _lines_into(crowd: str, process: subprocess.Popen[str], lines: Lines) -> None:
    """Each line the crowd's process prints, then None when it stops printing."""
    assert process.stdout is not None
    for line in process.stdout:
        lines.put((crowd, line))
    lines.put((crowd, None))


def _crowds_joined(latest: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One progress event from the crowds' latest: phase, users, rps, failures."""
    events = list(latest.values())
    rps = sum(float(e.get("rps", 0) or 0) for e in events)
    failed = sum(float(e.get("rps", 0) or 0) * e.get("fail_ratio", 0) for e in events)
    finishing = [e for e in events if e.get("event") == "finishing"]
    phases = [e["phase"] for e in events if e.get("phase")]
    return {
        "event": "finishing" if finishing else "progress",
        "phase": phases[0] if phases else "",
        "users": sum(int(e.get("users", 0) or 0) for e in events),
        "rps": round(rps, 1),
        "fail_ratio": failed / rps if rps else 0.0,
        "accepted": sum(int(e.get("accepted", 0) or 0) for e in events),
        "purchases": sum(int(e.get("purchases", 0) or 0) for e in events),
    }
