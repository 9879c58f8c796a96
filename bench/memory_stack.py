"""The demo stack that bench.memory measures: started as `make demo` starts it (with
embedded servers in a data directory of its own), a sale run against it, stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.memory_groups import Group, _pss_or_rss, mib, postmaster, redis_server
from common.harness.processes import Process, ProcessError
from common.harness.procfile import ROOT
from common.harness.services import demo_process


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status < 500)
    except urllib.error.HTTPError as error:
        return error.code < 500
    except OSError:
        return False


def demo_stack(env: dict[str, str], urls: dict[str, str], log_path: Path) -> Process:
    """`python -m common.devstack demo` (not started): ready when every URL answers
    below 500; saying how far it got every 5 s. One SIGINT to its group stops it."""
    progress = {"started": 0.0, "said": 0.0}

    def ready() -> bool:
        progress["started"] = progress["started"] or time.monotonic()
        elapsed = time.monotonic() - progress["started"]
        state = {name: answers(url) for name, url in urls.items()}
        if all(state.values()):
            print(f"  ready after {elapsed:.1f}s", flush=True)
            return True
        if elapsed - progress["said"] >= 5:
            shown = ", ".join(
                f"{n}: {'up' if ok else 'down'}" for n, ok in state.items()
            )
            print(f"  waiting… {elapsed:4.0f}s  ({shown})", flush=True)
            progress["said"] = elapsed
        return False

    return demo_process(
        env=env, ready=ready, log_path=log_path, grace=30, poll_seconds=0.5
    )


def demo_start(stack: Process, timeout: float) -> float:
    """Start it; the seconds it took to answer (RuntimeError with its log's tail)."""
    started = time.monotonic()
    try:
        stack.start(timeout=timeout)
    except ProcessError as error:
        raise RuntimeError(str(error)) from None
    return time.monotonic() - started


def stop_stack(stack: Process, pgdata: Path, redis_port: int) -> list[str]:
    """SIGINT to the launcher's process group, like Ctrl-C; then check the servers."""
    code = stack.stop()
    if code == -signal.SIGKILL:
        notes = ["devstack ignored SIGINT for 30s: SIGKILL"]
    else:
        notes = [f"devstack exited with {code}"]
    server = postmaster(pgdata)
    if server is not None:
        try:
            server.wait(timeout=10)
        except psutil.TimeoutExpired:
            notes.append("embedded PostgreSQL still running: pg_ctl stop -m fast")
            pg_ctl_stop(pgdata, server)
    notes.append(
        "embedded PostgreSQL stopped"
        if postmaster(pgdata) is None
        else "embedded PostgreSQL is STILL RUNNING"
    )
    redis = redis_server(redis_port)
    if redis is not None:
        notes.append("embedded Redis still running: SIGTERM")
        redis.terminate()
        try:
            redis.wait(timeout=10)
        except psutil.TimeoutExpired:
            redis.kill()
    notes.append(
        "embedded Redis stopped"
        if redis_server(redis_port) is None
        else "embedded Redis is STILL RUNNING"
    )
    return notes


def pg_ctl_stop(pgdata: Path, server: psutil.Process) -> None:
    import pgserver

    pg_ctl = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_ctl"
    # pg_ctl refuses to run as root; pgserver runs the server as its own user then.
    owner = server.username()
    user = owner if os.geteuid() == 0 and owner != "root" else None
    subprocess.run(
        [str(pg_ctl), "-D", str(pgdata), "stop", "-m", "fast", "-w"],
        user=user,
        check=False,
        timeout=60,
    )


@dataclass
class SalePeak:
    groups: list[Group]
    samples: int
    at_seconds: float
    exit_code: int


def sale_peak(
    mode: str,
    *,
    env: dict[str, str],
    workdir: Path,
    every: float,
    sample: Callable[[], list[Group]],
) -> SalePeak:
    """Run the sale's load test against the measured stack; keep its fullest moment."""
    command = [sys.executable, "-m", "loadtest", "run", "--no-start"]
    command += ["--no-traces", "--reports-dir", str(workdir / "reports")]
    if mode != "both":
        command += ["--mode", mode]
    print(f"==> {' '.join(command[1:])}  (memory every {every:.0f}s)", flush=True)
    sale_log = workdir / "sale.log"
    started = time.monotonic()
    best: list[Group] = []
    best_at, count = 0.0, 0
    with sale_log.open("wb") as log:
        sale = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
        last_said = 0.0
        while sale.poll() is None:
            groups = sample()
            count += 1
            if not best or _pss_or_rss(groups) > _pss_or_rss(best):
                best, best_at = groups, time.monotonic() - started
            if time.monotonic() - last_said >= 15:
                last_said = time.monotonic()
                print(
                    f"    {time.monotonic() - started:5.0f}s  now "
                    f"{mib(_pss_or_rss(groups))} MiB, peak {mib(_pss_or_rss(best))} "
                    f"MiB (PSS)",
                    flush=True,
                )
            with contextlib.suppress(subprocess.TimeoutExpired):
                sale.wait(every)
    if sale.returncode not in (0, 1):  # 1: the run found lost/duplicated orders
        raise RuntimeError(
            f"the sale run failed ({sale.returncode}):\n"
            + "\n".join(sale_log.read_text(errors="replace").splitlines()[-40:])
        )
    return SalePeak(best, count, best_at, sale.returncode)
