"""One mode's load, Locust as a library, in a process of its own:

    python -m loadtest.load OPTIONS.json

(gevent patches the whole process, so the runner keeps it away from its own threads.)
Plays one of Locust's crowds (`options.crowd`: the shoppers, the closed-loop
flash-sale buyers of `--closed-loop`, or everyone; the open-loop crowds are
loadtest/openloop.py's) through the flash-sale shape against the edge, from
`options.start_at`; prints a JSON progress line a second, waits for the purchases
still under way, and writes into `out_dir`, each name ending in the crowd: Locust's CSV
files (`locust-<crowd>_stats.csv`, `_stats_history.csv`, failures, exceptions) and
its HTML report (`locust-<crowd>.html`), plus `samples-<crowd>.csv` (every request),
`attempts-<crowd>.json` (every purchase attempt) and `phases-<crowd>.json` (the
phases' wall-clock boundaries, and the process's own CPU seconds). The runner
merges the crowds' samples, attempts and phases.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from gevent import Greenlet  # noqa: E402
from locust import User  # noqa: E402
from locust.env import Environment  # noqa: E402
from locust.html import get_html_report  # noqa: E402
from locust.stats import (  # noqa: E402
    PERCENTILES_TO_REPORT,
    StatsCSVFileWriter,
    stats_history,
)

from loadtest.config import EVERYONE, TRACE_ID_HEADER, LoadOptions  # noqa: E402
from loadtest.journal import Journal  # noqa: E402
from loadtest.phases import phase_at, phases  # noqa: E402
from loadtest.shape import FlashSaleShape  # noqa: E402
from loadtest.users import Browser, MuskieBuyer, Sale, TourneyBuyer  # noqa: E402


def _say(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


CROWD_CLASSES: dict[str, list[type[User]]] = {
    "shoppers": [Browser, TourneyBuyer],
    "buyers": [MuskieBuyer],
    EVERYONE: [Browser, TourneyBuyer, MuskieBuyer],
}


def _environment(options: LoadOptions, journal: Journal) -> Environment:
    """Locust's environment for the crowd, every request sampled into `journal`."""
    Sale.configure(options, journal)
    user_classes = CROWD_CLASSES[options.crowd]
    for user_class in user_classes:
        user_class.host = options.host
    env = Environment(
        user_classes=user_classes,
        shape_class=FlashSaleShape(options),
        host=options.host,
        stop_timeout=None,
    )

    def on_request(
        request_type: str,
        name: str,
        response_time: float,
        response: Any = None,
        exception: Any = None,
        start_time: float | None = None,
        **_: Any,
    ) -> None:
        status = int(getattr(response, "status_code", 0) or 0)
        started = start_time if start_time else time.time() - response_time / 1000
        headers = getattr(response, "headers", None) or {}
        trace_id = str(headers.get(TRACE_ID_HEADER, "") or "")
        journal.sample(
            started, name, status, float(response_time), exception is None, trace_id
        )

    env.events.request.add_listener(on_request)
    return env


def _phases_write(path: Path, options: LoadOptions, started: float) -> None:
    planned = phases(options)
    windows = [
        {"name": p.name, "start": started + p.start, "end": started + p.end}
        for p in planned
    ]
    path.write_text(json.dumps({"started": started, "phases": windows}, indent=1))


def _follow(
    runner: Any, options: LoadOptions, journal: Journal, started: float
) -> float:
    """A progress line a second until the shape ends, then until the purchases
    under way finish (or time out); when the load ended."""
    crowd = options.crowd
    while runner.shape_greenlet is not None or runner.state == "spawning":
        total = runner.stats.total
        _say(
            event="progress",
            crowd=crowd,
            at=time.time(),
            phase=phase_at(options, time.time() - started),
            users=runner.user_count,
            rps=round(total.current_rps, 1),
            fail_ratio=round(total.fail_ratio, 4),
            accepted=journal.accepted(),
            purchases=len(Sale.purchases),
        )
        gevent.sleep(1.0)
    load_end = time.time()
    # Purchases under way when their buyer was stopped still finish (or time out).
    waited = options.follow_timeout + 2 * options.request_timeout
    while len(Sale.purchases) and time.time() - load_end < waited:
        purchases = len(Sale.purchases)
        _say(event="finishing", crowd=crowd, at=time.time(), purchases=purchases)
        gevent.sleep(1.0)
    return load_end


def _writer_close(writer: StatsCSVFileWriter) -> None:
    writer.requests_flush()
    writer.stats_history_flush()
    writer.failures_flush()
    writer.exceptions_flush()
    writer.close_files()


def run(options: LoadOptions) -> int:
    out = Path(options.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    crowd = options.crowd
    journal = Journal()
    env = _environment(options, journal)
    runner = env.create_local_runner()
    writer = StatsCSVFileWriter(
        env, PERCENTILES_TO_REPORT, str(out / f"locust-{crowd}"), full_history=True
    )
    if options.start_at:
        gevent.sleep(max(0.0, options.start_at - time.time()))
    greenlets: list[Greenlet[..., object]] = [
        gevent.spawn(writer.stats_writer),
        gevent.spawn(stats_history, runner),
    ]
    started = time.time()
    runner.start_shape()
    phases_path = out / f"phases-{crowd}.json"
    _phases_write(phases_path, options, started)
    _say(event="started", at=started, crowd=crowd)
    load_end = _follow(runner, options, journal, started)
    Sale.purchases.kill(block=True, timeout=5)
    runner.quit()
    gevent.sleep(1.1)  # one last round of the CSV writer
    for greenlet in greenlets:
        greenlet.kill(block=True, timeout=5)
    _writer_close(writer)
    (out / f"locust-{crowd}.html").write_text(
        get_html_report(env, show_download_link=False)
    )
    journal.write(out, suffix=f"-{crowd}")
    phases_file = json.loads(phases_path.read_text())
    phases_file["load_end"] = load_end
    phases_file["ended"] = time.time()
    times = os.times()
    phases_file["generator"] = {
        # The whole process's, its start included.
        "cpu_seconds": round(times.user + times.system, 3),
        "wall_seconds": round(phases_file["ended"] - started, 3),
        "requests": runner.stats.total.num_requests,
    }
    phases_path.write_text(json.dumps(phases_file, indent=1))
    requests = runner.stats.total.num_requests
    _say(event="done", crowd=crowd, at=time.time(), requests=requests)
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m loadtest.load OPTIONS.json\n")
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    options = LoadOptions.from_json(json.loads(Path(argv[0]).read_text()))
    return run(options)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
