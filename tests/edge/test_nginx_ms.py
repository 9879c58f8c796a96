"""The nginx engine's seconds-to-milliseconds map (`Server-Timing`, the JSON log),
run by a real nginx: the hash of values under a second and the regexes agree."""

from __future__ import annotations

import urllib.request

from edge_router.nginx_http import ms_map
from tests.support.edge import nginx_process
from tests.support.processes import free_port


def test_nginx_turns_seconds_into_milliseconds_under_and_over_a_second() -> None:
    # given nginx answering with the map of its `t` argument
    port = free_port()
    config = "\n".join(
        [
            "pid nginx.pid;",
            "error_log stderr warn;",
            "events {}",
            "http {",
            "access_log off;",
            *ms_map("$arg_t", "$edge_test_ms"),
            f"server {{ listen 127.0.0.1:{port};",
            "location / { return 200 $edge_test_ms; } }",
            "}",
        ]
    )
    cases = {
        "0.000": "0",
        "0.004": "4",
        "0.010": "10",
        "0.120": "120",
        "0.999": "999",
        "1.000": "1000",
        "12.345": "12345",
        "-": "0",
        "0.002,%200.003": "0",
    }
    with nginx_process(config, port):
        # when each value is asked for, then its milliseconds come back
        got = {
            seconds: urllib.request.urlopen(f"http://127.0.0.1:{port}/?t={seconds}")
            .read()
            .decode()
            for seconds in cases
        }
    assert got == cases
