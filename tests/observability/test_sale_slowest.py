"""The sale report's slowest Tourney requests, from a stored sample set whose trace
ids are real: Tourney pages fetched through the real edge, each traced by every
process it crossed, then `manage.py traces slowest` (a subprocess, as the sale runs
it) over the spans they stored."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from common.harness.processes import Process
from loadtest.config import TOURNEY_PAGE
from loadtest.journal import Sample, samples_write
from loadtest.slowest import (
    SLOWEST_COUNT,
    SLOWEST_DIR,
    slowest_explain,
    slowest_markdown,
)
from loadtest.stats import TOURNEY
from observability.store import FileSpanStore, trace_wait
from tests.support.edge import edge_process, set_mode
from tests.support.tracing import traced_env

pytestmark = pytest.mark.stack

MODES = ("legacy", "strangler")
PER_MODE = SLOWEST_COUNT + 2


def _tourney_samples(edge_url: str, store: FileSpanStore) -> list[Sample]:
    """PER_MODE Tourney pages through the edge, timed here, their traces stored."""
    samples: list[Sample] = []
    with httpx.Client(base_url=edge_url, timeout=10) as client:
        for _ in range(PER_MODE):
            started = time.time()
            answer = client.get(TOURNEY_PAGE)
            ms = answer.elapsed.total_seconds() * 1000
            assert answer.status_code == 200
            assert answer.headers["X-Edge-Origin"] == "shop"
            samples.append(
                (started, TOURNEY, 200, ms, True, answer.headers["X-Trace-Id"])
            )
    for sample in samples:
        trace_wait(
            store,
            sample[5],
            complete=lambda t: (
                {"edge", "shop"} <= set(t.services) and not t.missing_parents()
            ),
        )
    return samples


def _mode_dir(report: Path, mode: str, samples: list[Sample]) -> None:
    """The mode's samples.csv and phases.json as a sale run leaves them: the Tourney
    pages in the sale window, and around them what must not be picked."""
    start, end = samples[0][0] - 1, samples[-1][0] + 1
    others: list[Sample] = [
        # before the sale (the baseline), slower than any: not the sale's
        (start - 5, TOURNEY, 200, 9_000.0, True, "f" * 32),
        # in the sale, slower, but no trace id (an answer without the header)
        (start + 0.5, TOURNEY, 502, 8_000.0, False, ""),
        # another page, slower
        (start + 0.5, "browse: reels", 200, 7_000.0, True, "e" * 32),
    ]
    directory = report / mode
    directory.mkdir(parents=True)
    samples_write(directory / "samples.csv", sorted([*samples, *others]))
    phases = [
        {"name": "baseline", "start": start - 10, "end": start},
        {"name": "ramp", "start": start, "end": start + 0.2},
        {"name": "fade", "start": end - 0.2, "end": end},
    ]
    (directory / "phases.json").write_text(json.dumps({"phases": phases}))


@pytest.fixture(scope="module")
def sale_report(edge, store, traces_dir, tmp_path_factory) -> tuple[Path, dict]:
    report = tmp_path_factory.mktemp("sale")
    measured: dict[str, list[Sample]] = {}
    for mode in MODES:
        set_mode(edge, mode)
        measured[mode] = _tourney_samples(edge.url, store)
        _mode_dir(report, mode, measured[mode])
    env = {**os.environ, "TRACES_DIR": str(traces_dir), "JAEGER_QUERY_URL": ""}
    # when the run explains its slowest Tourney requests
    slowest = slowest_explain(report, MODES, env=env)
    return report, {"slowest": slowest, "measured": measured}


def test_the_slowest_tourney_requests_of_each_sale_are_listed_slowest_first(
    sale_report,
):
    report, got = sale_report
    slowest = got["slowest"]
    assert slowest["ok"], slowest
    for mode in MODES:
        # then the mode's slowest traced Tourney requests of the sale window
        # (as samples.csv keeps them: to 0.01 ms, ties in the order they came)
        expected = sorted(
            got["measured"][mode], key=lambda s: float(f"{s[3]:.2f}"), reverse=True
        )
        rows = slowest["modes"][mode]
        assert [r["trace_id"] for r in rows] == [s[5] for s in expected][:SLOWEST_COUNT]
        assert [r["ms"] for r in rows] == sorted((r["ms"] for r in rows), reverse=True)
        # each with its trace found in the store, in a view of its own
        for row in rows:
            assert row["found"], row
            view = report / SLOWEST_DIR / row["view"]
            html = view.read_text()
            assert row["trace_id"] in html
            assert "edge" in html
            assert "shop" in html


def test_each_slow_request_says_where_its_time_went(sale_report):
    _, got = sale_report
    for mode in MODES:
        for row in got["slowest"]["modes"][mode]:
            segments = row["segments_ms"]
            # then the edge, the shop and PostgreSQL each took part of it
            assert segments["edge"] > 0, row
            assert segments["shop"] > 0, row
            assert segments["postgresql"] > 0, row
            # the page did not reach the warehouse
            assert segments["warehouse"] == 0, row
            # and the segments add up to the latency the client measured, or to the
            # trace's when the edge's span outlasted the client's wait (it closes
            # after the last write)
            whole = max(row["ms"], row["traced_ms"])
            assert sum(segments.values()) == pytest.approx(whole, abs=0.1)
            if row["traced_ms"] >= row["ms"]:
                assert segments["outside"] == 0, row
            # of which the trace covers the part inside the edge's server span
            inside = sum(v for k, v in segments.items() if k != "outside")
            assert inside == pytest.approx(row["traced_ms"], abs=0.1)


def test_the_report_links_each_slow_request_to_its_trace_view(sale_report):
    report, got = sale_report
    # when the report's section is written
    lines = slowest_markdown(got["slowest"])
    text = "\n".join(lines)
    # then each mode has a table with a column per segment
    for mode in MODES:
        assert f"**{mode}**" in text
    header = "| request | ms | outside the trace | edge | waiting | shop | PostgreSQL"
    assert header in text
    # and a row per slow request, linked to a trace view that exists
    links = [line for line in lines if line.startswith("| [`")]
    assert len(links) == 2 * SLOWEST_COUNT
    for line in links:
        target = line.split("](", 1)[1].split(")", 1)[0]
        assert (report / target).is_file(), target


def test_a_request_whose_trace_is_not_stored_is_listed_as_such(traces_dir, tmp_path):
    # given a sale whose slowest Tourney request names a trace nobody stored
    report = tmp_path
    now = time.time()
    _mode_dir(report, "legacy", [(now, TOURNEY, 200, 50.0, True, "0" * 32)])
    env = {**os.environ, "TRACES_DIR": str(traces_dir), "JAEGER_QUERY_URL": ""}
    # when the run explains it
    slowest = slowest_explain(report, ("legacy",), env=env)
    # then it is listed, without a link, saying so
    [row] = slowest["modes"]["legacy"]
    assert not row["found"]
    assert "not in the trace store" in "\n".join(slowest_markdown(slowest))


@pytest.fixture(scope="module")
def nginx_edge(stack, traces_dir) -> Iterator[Process]:
    """The edge on the nginx engine in front of the same traced stack: it starts no
    trace, so each Tourney page's trace starts at the shop."""
    extra: dict[str, Any] = traced_env(traces_dir)
    extra["SALE_SITE_DIR"] = stack.env["SALE_SITE_DIR"]
    with edge_process(
        stack.shop.url, stack.orders.url, engine="nginx", **extra
    ) as running:
        yield running


def test_through_the_nginx_engine_the_edge_s_time_is_outside_the_trace(
    nginx_edge, store, traces_dir, tmp_path
):
    # given Tourney pages fetched through nginx, each naming the shop's trace
    samples: list[Sample] = []
    with httpx.Client(base_url=nginx_edge.url, timeout=10) as client:
        for _ in range(SLOWEST_COUNT):
            started = time.time()
            answer = client.get(TOURNEY_PAGE)
            assert answer.status_code == 200
            assert answer.headers["Server"].startswith("nginx")
            ms = answer.elapsed.total_seconds() * 1000
            samples.append(
                (started, TOURNEY, 200, ms, True, answer.headers["X-Trace-Id"])
            )
    for sample in samples:
        trace_wait(store, sample[5], complete=lambda t: "shop" in t.services)
    _mode_dir(tmp_path, "legacy", samples)
    env = {**os.environ, "TRACES_DIR": str(traces_dir), "JAEGER_QUERY_URL": ""}

    # when the run explains its slowest
    slowest = slowest_explain(tmp_path, ("legacy",), env=env)

    # then each is found, its trace starting at the shop: no edge segment, the
    # edge's time outside the trace, the whole still the latency measured
    assert slowest["ok"], slowest
    rows = slowest["modes"]["legacy"]
    assert len(rows) == SLOWEST_COUNT
    for row in rows:
        assert row["found"], row
        segments = row["segments_ms"]
        assert segments["edge"] == 0, row
        assert segments["shop"] > 0, row
        assert sum(segments.values()) == pytest.approx(row["ms"], abs=0.1)
        assert segments["outside"] == pytest.approx(
            row["ms"] - row["traced_ms"], abs=0.1
        )
    # and the report's section lists them, linked
    lines = slowest_markdown(slowest)
    assert len([line for line in lines if line.startswith("| [`")]) == SLOWEST_COUNT
