"""The access log never blocks the edge's event loop, even when stdout is full.

stdout is a pipe (honcho, a container runtime): when its reader falls behind the pipe
fills and a write blocks. The log hands its batches to a thread of its own, so a full
pipe delays the log, not the requests.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import termios
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import redis

from edge_router.accesslog import AccessLog
from tests.support.edge import Process, edge_command, edge_env
from tests.support.processes import ROOT, free_port

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


@pytest.fixture
def unread_edge(
    shop_origin: Process, orders_origin: Process
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A running edge (one worker) whose stdout is a pipe that nobody reads."""
    port = free_port()
    env = edge_env(shop_origin.url, orders_origin.url)
    edge = subprocess.Popen(
        edge_command(port, workers=1),
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert edge.poll() is None, "the edge exited at start"
            try:
                httpx.get(url + "/_edge/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the edge did not start"
                time.sleep(0.1)
        yield url, edge
    finally:
        edge.kill()
        edge.wait()
        assert edge.stdout is not None
        edge.stdout.close()
        shutil.rmtree(env["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
        key = env["EDGE_MODE_KEY"]
        redis.Redis.from_url(env["REDIS_URL"]).delete(key, key + ":version")


def _unread_bytes(pipe: int) -> int:
    pending = bytearray(4)
    fcntl.ioctl(pipe, termios.FIONREAD, pending)
    return int.from_bytes(pending, "little")


def test_a_running_edge_answers_while_its_stdout_pipe_is_full(
    unread_edge: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, edge = unread_edge
    assert edge.stdout is not None
    pipe = edge.stdout.fileno()
    # Full for the log's writer: a write of up to PIPE_BUF bytes is all or nothing,
    # and the pipe's page-sized slots may leave part of a page unused, so it blocks
    # with up to two PIPE_BUFs left free (how much depends on the batches' sizes):
    # full is nearly the pipe's size and not a byte more for a second of requests.
    full = fcntl.fcntl(pipe, fcntl.F_GETPIPE_SZ) - 2 * select.PIPE_BUF
    # (long paths make long lines: a few dozen requests fill the pipe)
    long = "/shop/" + "x" * 2000
    with httpx.Client(base_url=url, timeout=30) as client:
        # given the edge logged until its stdout pipe is full
        unread, grew_at = -1, time.monotonic()
        for sent in range(2000):
            assert client.get(f"{long}/{sent}").status_code == 200
            if _unread_bytes(pipe) != unread:
                unread, grew_at = _unread_bytes(pipe), time.monotonic()
            if unread >= full and time.monotonic() - grew_at >= 1.0:
                break
        assert unread >= full, "the pipe never filled"
        # when visitors keep asking: 100 more lines of 2 KB, three times what the
        # pipe holds, so the log's writer is blocked on it for most of them
        answers = [client.get(f"{long}/more/{n}") for n in range(100)]
        # then every request is answered while the pipe stays full, unread
        assert [a.status_code for a in answers] == [200] * 100
        assert _unread_bytes(pipe) >= full
    # (with the log written on the event loop, the worker would hang on the full
    # pipe and these requests would fail at the client's 30 s timeout)
