"""bench.tracing's load against a real HTTP server: at a fixed rate, the requests due
in the window are sent when due, spread over it, and counted once; the window's CPU
is read at its start and end; the rates' option refuses what it cannot use."""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from bench.tracing import _rates_parse
from bench.tracing_load import WARM_UP_SECONDS, load_closed, load_paced

PAGE = b'<form><input name="csrfmiddlewaretoken" value="tok"></form>'


class _Handler(BaseHTTPRequestHandler):
    arrivals: list[float]

    def do_GET(self) -> None:
        if self.path != "/shop/rods/muskie-casting-rod/":
            type(self).arrivals.append(time.monotonic())
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, list[float]]]:
    arrivals: list[float] = []
    handler = type("Handler", (_Handler,), {"arrivals": arrivals})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", arrivals
    finally:
        httpd.shutdown()
        httpd.server_close()


def _get(client: httpx.Client, token: str) -> bool:
    assert token == "tok"
    return client.get("/page").status_code == 200


def test_a_fixed_rate_sends_each_request_when_it_is_due(
    server: tuple[str, list[float]],
) -> None:
    url, arrivals = server
    reads: list[float] = []

    def cpu() -> dict[str, float]:
        reads.append(time.monotonic())
        return {"server": float(len(reads))}

    window = load_paced(url, _get, 1.0, rate=50.0, clients=4, cpu=cpu)

    # then the window counts the 50 requests due in its second, none of the warm-up
    assert (window.done, window.errors) == (50, 0)
    assert len(arrivals) == 50 + int(50 * WARM_UP_SECONDS)
    # sent as they fell due, never before: the last is due 1.98 s after the first
    # (all at once they take a tenth of a second)
    assert arrivals[-1] - arrivals[0] > 1.5
    # and the CPU was read at the window's start (after the warm-up) and its end
    assert window.cpu_before == {"server": 1.0}
    assert window.cpu_after == {"server": 2.0}
    assert reads[1] - reads[0] >= window.seconds > 0.9


def test_a_closed_loop_counts_only_the_window(
    server: tuple[str, list[float]],
) -> None:
    url, arrivals = server
    window = load_closed(url, _get, 0.5, clients=2, cpu=lambda: {"server": 0.0})
    assert window.errors == 0
    assert 0 < window.done < len(arrivals)
    assert window.seconds == pytest.approx(0.5, abs=0.1)


def test_the_rates_option_takes_short_names_and_refuses_the_rest() -> None:
    assert _rates_parse("tourney=150, buy=20") == {
        "tourney page": 150.0,
        "buy now": 20.0,
    }
    for wrong, said in [
        ("page=10", "one of tourney, buy, accept"),
        ("buy=fast", "a rate is a number"),
        ("accept=0", "between 0 and 10000"),
    ]:
        with pytest.raises(argparse.ArgumentTypeError, match=said):
            _rates_parse(wrong)
