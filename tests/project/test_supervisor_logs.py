"""The supervisor's log files (common/harness/log_rotation.py): real child processes
write past the size cap; the file is rotated between lines, never through one, the
newest generations kept, and every line also reaches the console, across a kill and
a restart."""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path

from common.harness.log_rotation import Rotation, rotation_from_env
from common.harness.processes import Process
from common.harness.supervisor import Supervisor

CAP = 64 * 1024
LINE = re.compile(r"^run (\d+) line (\d+) x+$")
# Each line is written in two halves, flushed apart, so the pipe often hands the
# supervisor half a line: it must wait for the rest before deciding on a rotation.
WRITER = """
import sys, time
run, count = sys.argv[1], int(sys.argv[2])
for i in range(count):
    text = f"run {run} line {i} " + "x" * 90 + "\\n"
    sys.stdout.write(text[:40]); sys.stdout.flush()
    sys.stdout.write(text[40:]); sys.stdout.flush()
sys.stdout.write("ready\\n"); sys.stdout.flush()
if len(sys.argv) > 3:
    time.sleep(600)
"""


def writer(tmp_path: Path, *args: str, rotation: Rotation) -> Process:
    return Process(
        "writer",
        [sys.executable, "-c", WRITER, *args],
        log_path=tmp_path / "writer.log",
        rotation=rotation,
        ready_text="ready",
    )


def kept_lines(log: Path, backups: int) -> list[str]:
    """Every generation's lines, oldest first; each file within the cap."""
    files = [log.with_name(f"{log.name}.{n}") for n in range(backups, 0, -1)] + [log]
    lines: list[str] = []
    for path in files:
        assert path.stat().st_size <= CAP, path
        text = path.read_text()
        assert text.endswith("\n"), path  # a file ends where a line does
        lines += text.splitlines()
    return lines


def test_a_log_past_its_cap_is_rotated_between_lines_keeping_the_newest(
    tmp_path: Path,
) -> None:
    # Given a process whose log is capped at 64 KiB, two old files kept
    process = writer(tmp_path, "1", "3000", rotation=Rotation(CAP, backups=2))
    # When it writes about 300 KiB, then ends
    process.start(timeout=60)
    assert process.process is not None
    process.process.wait(timeout=60)
    process.stop()
    log = process.log_path
    # Then three files are kept, no fourth
    assert log.with_name("writer.log.2").exists()
    assert not log.with_name("writer.log.3").exists()
    # And they hold the newest lines whole, in order, none missing at a boundary
    lines = kept_lines(log, backups=2)
    assert lines[-1] == "ready"
    matched = [LINE.match(line) for line in lines[:-1]]
    numbers = [int(m.group(2)) for m in matched if m]
    assert len(numbers) == len(lines) - 1
    assert numbers == list(range(numbers[0], 3000))
    assert numbers[0] > 0  # the oldest were dropped: that is the cap at work
    assert len(lines) * 100 > 2 * CAP


def test_a_killed_process_loses_no_line_and_its_successor_rotates_on(
    tmp_path: Path,
) -> None:
    shown: list[str] = []
    rotation = Rotation(CAP, backups=2, echo=shown.append)
    # Given a supervised process that wrote 1,000 lines and waits
    process = writer(tmp_path, "1", "1000", "wait", rotation=rotation)
    # (its own thread never looks: this test says when it does, by tick())
    supervisor = Supervisor(
        {"writer": process}, say=lambda _: None, restart_delay=0, poll=3600
    )
    supervisor.start()
    try:
        # When it is killed (SIGKILL), the supervisor restarts it, and the new one
        # writes 1,000 lines of its own: with the same argv, the same run number
        killed = process.process
        assert killed is not None
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait(timeout=10)
        supervisor.tick()
        assert process.process is not killed
        assert process.running()
    finally:
        supervisor.stop()
    # Then the console saw every line of both lives, whole, once each
    written = [LINE.match(line) for line in shown if line != "ready"]
    assert all(written), [s for s in shown if not LINE.match(s)][:3]
    numbers = [int(m.group(2)) for m in written if m]
    assert numbers == list(range(1000)) * 2
    assert shown.count("ready") == 2
    # And the files keep the newest of them, exactly as the console showed them
    lines = kept_lines(process.log_path, backups=2)
    assert lines == shown[-len(lines) :]
    assert len(lines) < len(shown)


def test_the_cap_and_the_backups_come_from_the_environment() -> None:
    assert rotation_from_env({}) == Rotation(20 * 1024 * 1024, 2)
    env = {"LOG_FILE_MAX_BYTES": "1048576", "LOG_FILE_BACKUPS": "5"}
    assert rotation_from_env(env) == Rotation(1024 * 1024, 5)
    # A cap too small to be useful is raised to 64 KiB; a bad one is the default
    assert rotation_from_env({"LOG_FILE_MAX_BYTES": "10"}).max_bytes == CAP
    assert rotation_from_env({"LOG_FILE_BACKUPS": "many"}).backups == 2
