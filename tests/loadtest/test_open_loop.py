"""The open-loop sale's arithmetic: when each request is due, latency from then, the
bootstrap interval of the Tourney ratio, the drain rate, the phases, the goals."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from loadtest.arrivals import (
    arrival_schedule,
    fixed_rate_schedule,
    latency_from_due_ms,
)
from loadtest.config import LoadOptions
from loadtest.goals import RUN_SECONDS_GOAL, goals
from loadtest.journal import Attempt
from loadtest.phases import phases, sale_window
from loadtest.repeats import spread
from loadtest.sale_figures import (
    allocation_figures,
    drain_figures,
    epoch,
    tourney_ratio,
)
from loadtest.slowest import _sale_window as slowest_sale_window
from loadtest.stats import bootstrap_ratio, drain_rate, percentile


def test_uniform_arrivals_are_due_one_every_one_over_the_rate() -> None:
    due = arrival_schedule(count=1200, rate=60, start=1000.0)

    assert len(due) == 1200
    assert due[0] == 1000.0
    assert due[1] - due[0] == pytest.approx(1 / 60)
    # the last of 1,200 at 60 a second is due just before 20 s have passed
    assert due[-1] == pytest.approx(1000.0 + 1199 / 60)


def test_poisson_arrivals_keep_the_rate_on_average_and_repeat_with_their_seed() -> None:
    first = arrival_schedule(count=6000, rate=60, start=0.0, process="poisson", seed=7)
    again = arrival_schedule(count=6000, rate=60, start=0.0, process="poisson", seed=7)
    other = arrival_schedule(count=6000, rate=60, start=0.0, process="poisson", seed=8)

    assert first == again
    assert first != other
    assert first == sorted(first)
    assert first[-1] / 6000 == pytest.approx(1 / 60, rel=0.05)


def test_an_unknown_arrival_process_or_a_rate_of_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="bursty"):
        arrival_schedule(count=3, rate=1, start=0, process="bursty")
    with pytest.raises(ValueError, match="rate"):
        arrival_schedule(count=3, rate=0, start=0)


def test_a_fixed_rate_fills_its_window_and_stops_before_its_end() -> None:
    due = fixed_rate_schedule(rate=40, start=10.0, end=40.0)

    assert len(due) == 1200
    assert due[0] == 10.0
    assert due[-1] < 40.0
    assert fixed_rate_schedule(rate=40, start=10.0, end=10.0) == []


def test_latency_counts_from_when_the_request_was_due_not_when_it_was_sent() -> None:
    # Given a request due at t=100 that a busy generator only sent at t=100.4
    # When it is answered 50 ms after it was sent
    ms = latency_from_due_ms(due=100.0, answered=100.45)

    # Then its latency is 450 ms: the 400 ms it waited to be sent count
    assert ms == pytest.approx(450.0)
    assert latency_from_due_ms(due=100.0, answered=99.0) == 0.0


def test_the_bootstrap_interval_holds_the_ratio_and_narrows_with_more_samples() -> None:
    draw = random.Random(1)
    baseline = [draw.lognormvariate(3, 0.4) for _ in range(800)]
    sale = [2 * draw.lognormvariate(3, 0.4) for _ in range(1200)]
    few_base, few_sale = baseline[:100], sale[:100]

    wide = bootstrap_ratio(few_sale, few_base, resamples=300)
    narrow = bootstrap_ratio(sale, baseline, resamples=300)

    point = percentile(sale, 99) / percentile(baseline, 99)  # type: ignore[operator]
    assert narrow is not None
    assert wide is not None
    assert narrow[0] <= point <= narrow[1]
    assert narrow[1] - narrow[0] < wide[1] - wide[0]
    # the same seed, the same interval
    assert bootstrap_ratio(sale, baseline, resamples=300) == narrow
    assert bootstrap_ratio([], baseline) is None


def test_the_drain_rate_is_the_slope_of_the_orders_packed_over_time() -> None:
    # Given 300 orders packed 15 a second, the first few slower while workers start
    done = [0.5, 0.9] + [1.0 + i / 15 for i in range(298)]

    # Then the rate is 15 a second, the start left out
    assert drain_rate(done) == pytest.approx(15.0, rel=0.01)
    assert drain_rate([1.0, 2.0]) is None


def test_the_drain_rate_counts_only_the_queues_orders_while_it_held_a_backlog() -> None:
    fulfilments = [
        {"order_ref": f"MU-{i}", "created_at": f"2026-12-06T10:00:{i / 15:06.3f}Z"}
        for i in range(300)
    ] + [{"order_ref": "LF-1", "created_at": "2026-12-06T10:00:01.000Z"}]

    # (the queue held a backlog the whole time: 10 orders waiting, 3 taken at once)
    start = fulfilments[0]["created_at"]
    at = epoch(start)
    watch = [{"at": at + t, "waiting": 10} for t in (-1.0, 21.0)]

    drain = drain_figures(
        fulfilments=fulfilments, concurrency=3, handling_ms=200, watch=watch
    )
    idle = drain_figures(
        fulfilments=fulfilments,
        concurrency=3,
        handling_ms=200,
        watch=[{"at": at + 5.0, "waiting": 2}],
    )

    assert drain["orders"] == 300
    assert drain["orders_in_backlog"] == 300
    assert drain["configured_per_s"] == 15.0
    assert drain["measured_per_s"] == pytest.approx(15.0, rel=0.01)
    assert drain["ratio"] == pytest.approx(1.0, abs=0.01)
    # And without a backlog (orders came slower than they drain) there is no rate
    assert (idle["measured_per_s"], idle["ratio"]) == (None, None)


def _options(**changes: object) -> LoadOptions:
    base = {
        "host": "", "mode": "strangler", "run_tag": "t", "out_dir": "",
        "warmup_seconds": 5.0, "baseline_seconds": 20.0,
    }  # fmt: skip
    return LoadOptions(**{**base, **changes})  # type: ignore[arg-type]


def _windows(options: LoadOptions, started: float = 0.0) -> list[dict[str, object]]:
    return [
        {"name": p.name, "start": started + p.start, "end": started + p.end}
        for p in phases(options)
    ]


def test_open_loop_phases_are_the_arrivals_then_the_watch_after_them() -> None:
    options = _options(buyers=1200, arrival_rate=60, after_seconds=10)

    names = [(p.name, p.end - p.start) for p in phases(options)]

    assert names == [
        ("warmup", 5.0), ("baseline", 20.0), ("arrivals", 20.0), ("after", 10.0)
    ]  # fmt: skip
    assert sale_window(_windows(options)) == (25.0, 55.0)
    closed = [p.name for p in phases(_options(closed_loop=True))]
    assert closed == ["warmup", "baseline", "ramp", "hold", "fade"]


def _accepted(at: float) -> Attempt:
    return Attempt(
        kind="muskie", buyer=1, attempt=1, email="x", started=at, outcome="accepted"
    )


def test_the_allocation_sold_within_the_rush_or_not() -> None:
    options = _options(buyers=1200, arrival_rate=60)
    phases_json = {"phases": _windows(options, started=1000.0)}
    # the sale opens at 1025; 300 units at 60 a second: goal 5 + 2 = 7 s
    quick = [_accepted(1025.0 + i / 60) for i in range(300)]
    slow = [_accepted(1025.0 + i / 30) for i in range(300)]
    orders = {"allocation": 300, "units_sold": 300}
    load = {"arrival_rate": 60.0, "closed_loop": False}

    fast = allocation_figures(
        attempts=quick, phases=phases_json, orders=orders, options=load
    )
    late = allocation_figures(
        attempts=slow, phases=phases_json, orders=orders, options=load
    )
    short = allocation_figures(
        attempts=quick[:200],
        phases=phases_json,
        orders={"allocation": 300, "units_sold": 200},
        options=load,
    )

    assert (fast["goal_s"], fast["within_goal"]) == (7.0, True)
    assert fast["last_sold_after_s"] == pytest.approx(4.98, abs=0.01)
    assert late["within_goal"] is False
    assert (short["sold_out"], short["within_goal"]) == (False, False)


def test_the_tourney_ratio_keeps_its_sample_counts_and_interval() -> None:
    options = _options(buyers=120, arrival_rate=6, after_seconds=10)
    windows = _windows(options)
    draw = random.Random(3)
    samples = [
        (5.0 + i * 0.05, "tourney page", 200, draw.uniform(10, 20), True, "t1")
        for i in range(400)
    ] + [
        (25.0 + i * 0.025, "tourney page", 200, draw.uniform(20, 40), True, "t2")
        for i in range(1200)
    ]

    ratio = tourney_ratio(samples, {"phases": windows})

    assert (ratio["baseline_samples"], ratio["sale_samples"]) == (400, 1200)
    assert 1.5 < ratio["ratio"] < 2.5
    assert ratio["ci95"][0] <= ratio["ratio"] <= ratio["ci95"][1]


def test_repeats_give_the_median_and_the_spread() -> None:
    assert spread([3.0, 1.0, 2.0]) == {
        "values": [3.0, 1.0, 2.0], "median": 2.0, "min": 1.0, "max": 3.0
    }  # fmt: skip
    assert spread([None, None])["median"] is None


def test_the_slowest_requests_are_picked_from_an_open_loop_sale_window(
    tmp_path: Path,
) -> None:
    # Given an open-loop mode's phases (no ramp or fade: arrivals, then after)
    phases = [
        {"name": "warmup", "start": 0.0, "end": 5.0},
        {"name": "baseline", "start": 5.0, "end": 29.0},
        {"name": "arrivals", "start": 29.0, "end": 49.0},
        {"name": "after", "start": 49.0, "end": 71.0},
    ]
    (tmp_path / "phases.json").write_text(json.dumps({"phases": phases}))
    # When the slowest requests' window is read
    window = slowest_sale_window(tmp_path)
    # Then it is the sale: from the first arrival to the end of the drain
    assert window == (29.0, 71.0)


def test_the_run_time_goal_is_a_rounds_when_the_modes_are_repeated() -> None:
    def run_goal(seconds: float, repeat: int) -> dict:
        summary = {"modes": {}, "run": {"seconds": seconds, "repeat": repeat}}
        (found,) = [g for g in goals(summary) if g["goal"].startswith("the whole run")]
        return found

    # one round over the limit fails; three rounds each within it pass, and say so
    assert run_goal(RUN_SECONDS_GOAL + 1, 1)["met"] is False
    three = run_goal(3 * RUN_SECONDS_GOAL - 30, 3)
    assert three["met"] is True
    total = 3 * RUN_SECONDS_GOAL - 30
    assert three["figure"] == f"{total / 3:.0f} s a round ({total:.0f} s for 3)"
    assert run_goal(3 * RUN_SECONDS_GOAL + 30, 3)["met"] is False


def test_the_queue_depth_goal_counts_orders_not_the_relays_bundles() -> None:
    def depth_goal(messages: int, waiting: int) -> dict:
        strangler = {
            "muskie_accept": {"p99_ms": 50.0},
            "allocation": {"units": 300},
            "queue": {"peak_depth": messages, "peak_waiting": waiting},
            "warehouse": {"fulfillment_concurrency": 3, "refused": 0},
            "orders": dict.fromkeys(("lost", "duplicated", "oversold"), 0),
            "tourney_orders": dict.fromkeys(("lost", "duplicated", "oversold"), 0),
        }
        summary = {"modes": {"strangler": strangler}, "run": {}}
        (found,) = [g for g in goals(summary) if "peak depth" in g["goal"]]
        return found

    # 226 orders waiting in 90 bundled messages: the buffer holds most of the units
    held = depth_goal(messages=90, waiting=226)
    assert held["met"] is True
    assert held["figure"] == "peak 226 orders waiting (90 messages), units 300"
    # one message an order, but few of them: no buffer to see
    assert depth_goal(messages=140, waiting=140)["met"] is False
