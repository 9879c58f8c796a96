"""bench.edge's open-loop client (bench/edge_open_loop.py) against a real nginx: every
request due is sent and answered, on a new connection each or on kept-alive ones; and
the arithmetic of the real page against the small origin."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from bench.edge_open_loop import _medians, _ratios, open_loop
from common.harness.nginx import nginx_process
from common.harness.processes import Process, free_port

BODY = "x" * 100
CONF = """worker_processes 1;
pid nginx.pid;
error_log stderr warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  keepalive_requests 10000;
  server {{
    listen 127.0.0.1:{port};
    location = /status {{ stub_status; }}
    location / {{ return 200 "{body}"; }}
  }}
}}
"""


@pytest.fixture
def origin() -> Iterator[Process]:
    port = free_port()
    with nginx_process("open-loop", CONF.format(port=port, body=BODY), port) as nginx:
        yield nginx


def _accepted(origin: Process) -> int:
    # stub_status: "Active connections: N \n server accepts handled requests\n A H R"
    text = httpx.get(origin.url + "/status").text
    return int(text.splitlines()[2].split()[0])


@pytest.mark.parametrize("connections", ["new", "keep-alive"])
def test_every_request_due_is_sent_and_answered(
    origin: Process, connections: str
) -> None:
    before = _accepted(origin)

    figures = open_loop(
        origin.url + "/page", rate=40, seconds=1, connections=connections,
        pids=[origin.pid],
    )  # fmt: skip

    assert (figures["requests"], figures["failed"]) == (40, 0)
    assert figures["bytes_per_request"] == len(BODY)
    assert figures["cpu_us_per_request"] >= 0
    # new: a connection per request; kept alive: far fewer than requests (the
    # status request itself is one more)
    accepted = _accepted(origin) - before - 1
    if connections == "new":
        assert accepted == 40
    else:
        assert 1 <= accepted < 20


def test_the_idle_share_is_taken_out_and_the_real_page_is_over_the_small() -> None:
    runs = {
        "small 25/s new": [{"cpu_us_per_request": c, "p50_ms": 1.0, "failed": 0,
                            "bytes_per_request": 86} for c in (600, 500, 700)],
        "real 25/s new": [{"cpu_us_per_request": c, "p50_ms": 9.0, "failed": 0,
                           "bytes_per_request": 6372} for c in (900, 1000, 800)],
    }  # fmt: skip
    # Given 5 ms a second idle for each edge: 200 µs of each request at 25/s
    medians = _medians(runs, {"small": 5.0, "real": 5.0})

    assert medians["small 25/s new"]["cpu_us_per_request"] == 600
    assert medians["small 25/s new"]["busy_cpu_us_per_request"] == 400
    assert medians["real 25/s new"]["busy_cpu_us_per_request"] == 700
    assert _ratios(medians) == {"25/s new": 1.75}
