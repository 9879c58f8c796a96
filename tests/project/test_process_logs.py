"""`make demo` keeps each process's output in a log file of its own, beside the
console: honcho run through common/harness/process_logs.py, on a Procfile of ours."""

from __future__ import annotations

import re
import subprocess
import sys

from common.harness.procfile import ROOT


def _run_honcho(tmp_path, procfile: str, **env: str) -> subprocess.CompletedProcess:
    (tmp_path / "Procfile").write_text(procfile)
    launcher = [sys.executable, "-m", "common.harness.process_logs"]
    return subprocess.run(
        [*launcher, "start", "-f", str(tmp_path / "Procfile")],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "LOGS_DIR": str(tmp_path / "logs"), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_each_process_has_its_own_log_file_and_the_console_still_shows_it(tmp_path):
    # given two processes; the first ends the run (honcho then stops the other)
    procfile = (
        "first: echo 'trace_id=aaa a line of the first'; sleep 1\n"
        "second: echo 'a line of the second'; sleep 30\n"
    )
    # when honcho runs them through the launcher
    done = _run_honcho(tmp_path, procfile)
    # then each one's lines are in its own file, as written, without honcho's prefix
    logs = tmp_path / "logs"
    assert (logs / "first.log").read_text() == "trace_id=aaa a line of the first\n"
    assert (logs / "second.log").read_text() == "a line of the second\n"
    # and the console shows them prefixed, as honcho always did
    assert re.search(r"first(\.1)? +\| trace_id=aaa a line of the first", done.stdout)
    # and honcho's own messages (started, exited) go to system.log
    assert "first.1 stopped (rc=0)" in (logs / "system.log").read_text()


def test_a_process_log_is_rotated_at_its_size_cap(tmp_path):
    # given a process that writes about 300 kB, and a cap of 100 kB a file
    line = "x" * 59
    procfile = f"chatty: python3 -c \"[print('{line}') for _ in range(5000)]\"\n"
    # when it runs
    _run_honcho(tmp_path, procfile, LOG_FILE_MAX_BYTES=str(100 * 1024))
    # then its log is the current file and two older ones, none above the cap
    logs = tmp_path / "logs"
    names = sorted(p.name for p in logs.glob("chatty.log*"))
    assert names == ["chatty.log", "chatty.log.1", "chatty.log.2"]
    assert all((logs / n).stat().st_size <= 100 * 1024 for n in names)
