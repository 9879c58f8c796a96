"""The access log never blocks the edge's event loop, even when stdout is full.

stdout is a pipe (honcho, a container runtime): when its reader falls behind the pipe
fills and a write blocks. The log hands its batches to a thread of its own, so a full
pipe delays the log, not the requests.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading

from edge_router.accesslog import AccessLog

LINES = 3000  # about 600 KB: many times a pipe's 64 KiB buffer


def _record(log: AccessLog, n: int) -> None:
    log.record(
        started_wall=1_790_000_000.0 + n,
        client="127.0.0.1",
        method="GET",
        path=f"/shop/rods/{n}/",
        route="default",
        origin="shop",
        status=200,
        sent=1234,
        duration=0.002,
        trace_id="0af7651916cd43dd8448eb211c80319c",
    )


def test_a_full_pipe_does_not_block_the_caller_and_loses_no_line() -> None:
    # given stdout is a pipe that nobody reads yet
    read_end, write_end = os.pipe()
    stream = os.fdopen(write_end, "w")
    log = AccessLog(True, stream=stream)

    # when the edge logs far more than the pipe holds and flushes after each line
    def log_everything() -> None:
        for n in range(LINES):
            _record(log, n)
            log.flush()

    caller = threading.Thread(target=log_everything, daemon=True)
    caller.start()
    caller.join(timeout=30)
    # then the caller was never held up by the full pipe
    assert not caller.is_alive(), "flush() blocked on a full pipe"

    # and once someone reads, every line comes out, in order
    chunks: list[bytes] = []
    reader = threading.Thread(
        target=lambda: chunks.extend(iter(lambda: os.read(read_end, 65536), b"")),
        daemon=True,
    )
    reader.start()
    log.close()
    stream.close()
    reader.join(timeout=30)
    os.close(read_end)
    lines = b"".join(chunks).decode().splitlines()
    assert len(lines) == LINES
    assert [json.loads(line)["path"] for line in lines] == [
        f"/shop/rods/{n}/" for n in range(LINES)
    ]


def test_a_closed_stdout_loses_the_log_but_not_the_edge() -> None:
    # given stdout's reader went away (the write end gets EPIPE)
    read_end, write_end = os.pipe()
    os.close(read_end)
    stream = os.fdopen(write_end, "w")
    log = AccessLog(True, stream=stream)
    # when the edge logs, flushes and shuts down, twice over
    for n in range(2):
        _record(log, n)
        log.close(timeout=10)
    # then no error reached it, and no writer thread is left behind
    writers = [t for t in threading.enumerate() if t.name == "edge-access-log"]
    assert all(not t.is_alive() for t in writers)
    with contextlib.suppress(OSError):
        stream.close()
