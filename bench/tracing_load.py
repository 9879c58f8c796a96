"""bench.tracing's load: client threads with a connection each, at a fixed rate (open
loop, the default) or as fast as the servers answer (closed loop, `--load closed`).

CPU per request compares the same work only over the same load: in a closed loop the
traced arm, slower, gets through fewer requests, and the servers' CPU that does not
follow the requests (timers, pools, the row lock's waiters) is spread over fewer of
them. Buy now moved from 38 to 116 buys a second between rounds of one arm, and its
CPU a buy with it (docs/results/2026-12-06-sampled-purchases-tracing.md). At a fixed
rate both arms are asked for the same requests at the same times: each request is
sent when it is due (a thread that is late sends at once), so a slower arm is late,
not asked less.

Either way the servers' CPU is read at the start and the end of the measured window
(after a second of warm-up), and only the requests due in it are counted.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

MUSKIE = "/shop/rods/muskie-casting-rod/"
WARM_UP_SECONDS = 1.0

Action = Callable[[httpx.Client, str], bool]
Snapshot = Callable[[], dict[str, float]]


@dataclass
class Window:
    """What the measured window got: answers, failures, its length, and the
    servers' CPU seconds at its start and end (per part)."""

    done: int
    errors: int
    seconds: float
    cpu_before: dict[str, float]
    cpu_after: dict[str, float]


def client_open(base_url: str) -> tuple[httpx.Client, str]:
    """A client with its own connection, and the CSRF token of the Muskie page."""
    client = httpx.Client(base_url=base_url, timeout=30.0)
    page = client.get(MUSKIE)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    if token is None:
        raise SystemExit("the Muskie page has no buy-now form")
    return client, token[1]


class _Run:
    """The threads of one load and the window they count in."""

    def __init__(self, base_url: str, action: Action, clients: int) -> None:
        self.action = action
        self.clients = [client_open(base_url) for _ in range(clients)]
        self.counts = [[0, 0] for _ in self.clients]

    def count(self, index: int, ok: bool) -> None:
        self.counts[index][0 if ok else 1] += 1

    def totals(self) -> tuple[int, int]:
        return sum(c[0] for c in self.counts), sum(c[1] for c in self.counts)

    def close(self) -> None:
        for client, _ in self.clients:
            client.close()


def load_closed(
    base_url: str, action: Action, seconds: float, *, clients: int, cpu: Snapshot
) -> Window:
    """Each thread asks again as soon as it has its answer, for `seconds` after the
    warm-up; the requests answered inside the window count."""
    run = _Run(base_url, action, clients)
    measuring, stop = threading.Event(), threading.Event()

    def loop(index: int) -> None:
        client, token = run.clients[index]
        while not stop.is_set():
            ok = run.action(client, token)
            if measuring.is_set() and not stop.is_set():
                run.count(index, ok)

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(WARM_UP_SECONDS)
    before = cpu()
    measuring.set()
    started = time.monotonic()
    time.sleep(seconds)
    stop.set()
    elapsed = time.monotonic() - started
    after = cpu()
    for thread in threads:
        thread.join()
    run.close()
    done, errors = run.totals()
    return Window(done, errors, elapsed, before, after)


def load_paced(
    base_url: str,
    action: Action,
    seconds: float,
    *,
    rate: float,
    clients: int,
    cpu: Snapshot,
) -> Window:
    """`rate` requests a second, each sent when it is due by the first free thread;
    the window holds the requests due in `seconds` after the warm-up, and ends when
    the last of them is answered."""
    run = _Run(base_url, action, clients)
    warm_up = int(rate * WARM_UP_SECONDS)
    total = warm_up + int(rate * seconds)
    due = itertools.count()  # next() is atomic under the GIL
    start = time.monotonic() + 0.05

    def loop(index: int) -> None:
        client, token = run.clients[index]
        while (number := next(due)) < total:
            wait = start + number / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            ok = run.action(client, token)
            if number >= warm_up:
                run.count(index, ok)

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, start + WARM_UP_SECONDS - time.monotonic()))
    before = cpu()
    started = time.monotonic()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    after = cpu()
    run.close()
    done, errors = run.totals()
    return Window(done, errors, elapsed, before, after)
