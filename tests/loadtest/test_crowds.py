"""Locust's crowds of a closed-loop sale run keep one shape: the shoppers the whole
time, the flash-sale buyers only from the ramp on; together they are the
single-process shape (Locust's web UI).

Locust patches the process it is imported into (gevent), so the shapes are asked in a
Python of their own, as `python -m loadtest.load` runs them.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.processes import ROOT

ASK_SHAPES = """
import json, time
from loadtest.config import LoadOptions
from loadtest.shape import FlashSaleShape

answers = {}
for crowd in ("shoppers", "buyers", "everyone"):
    options = LoadOptions(
        host="http://127.0.0.1:8000", mode="strangler", run_tag="t", out_dir="",
        warmup_seconds=2, baseline_seconds=10, ramp_seconds=4, hold_seconds=20,
        fade_seconds=10, browsers=40, tourney_buyers=3, peak_buyers=60, crowd=crowd,
        closed_loop=True,
    )
    shape = FlashSaleShape(options)
    ticks = {}
    for elapsed in (1, 5, 13, 20, 41, 45, 47):
        shape.start_time = time.perf_counter() - elapsed
        tick = shape.tick()
        ticks[elapsed] = None if tick is None else [
            tick[0], sorted(c.__name__ for c in tick[2])
        ]
    answers[crowd] = ticks
print(json.dumps(answers))
"""


def test_the_crowds_add_up_to_the_whole_sale() -> None:
    done = subprocess.run(
        [sys.executable, "-c", ASK_SHAPES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    shapes = json.loads(done.stdout.strip().splitlines()[-1])
    shoppers, buyers, everyone = (shapes[c] for c in ("shoppers", "buyers", "everyone"))

    # The shoppers are 40 browsers and 3 Tourney buyers from start to end
    for elapsed in ("1", "5", "13", "20", "41", "45"):
        assert shoppers[elapsed] == [43, ["Browser", "TourneyBuyer"]], elapsed
    # The buyers: none before the sale, 60 at the peak, fewer in the fade
    assert buyers["1"] == buyers["5"] == [0, ["MuskieBuyer"]]
    assert buyers["13"] == buyers["20"] == [60, ["MuskieBuyer"]]
    assert 0 < buyers["41"][0] < 60
    assert buyers["41"][0] > buyers["45"][0]
    # Together they are the one-process shape (Locust's web UI plays that one)
    for elapsed in ("1", "5", "13", "20", "41", "45"):
        assert everyone[elapsed][0] == shoppers[elapsed][0] + buyers[elapsed][0]
    # After the fade every crowd stops
    assert [shoppers["47"], buyers["47"], everyone["47"]] == [None, None, None]
