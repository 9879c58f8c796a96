"""The sale's users and shape for Locust's own web UI (`make sale-ui`):

    locust -f loadtest/locustfile.py --host http://127.0.0.1:8000 --class-picker

Pick `FlashSaleShape` for the scripted sale (its phases come from the SALE_* variables
below), or pick user classes and numbers yourself. Flip the edge mode while it runs
(`python manage.py edge mode strangler`) and watch the charts change.

    SALE_WARMUP_SECONDS=5 SALE_BASELINE_SECONDS=25 SALE_RAMP_SECONDS=5
    SALE_HOLD_SECONDS=600 SALE_FADE_SECONDS=10 SALE_BROWSERS=40
    SALE_TOURNEY_BUYERS=3 SALE_PEAK_BUYERS=60
"""

from __future__ import annotations

import os
import time

from loadtest import identity
from loadtest.config import LoadOptions
from loadtest.shape import FlashSaleShape
from loadtest.users import Browser, MuskieBuyer, Sale, TourneyBuyer

__all__ = ["Browser", "FlashSaleShape", "MuskieBuyer", "TourneyBuyer"]


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


FlashSaleShape.options = LoadOptions(
    host="",
    mode="ui",
    run_tag=f"ui{int(time.time())}",
    out_dir="",
    closed_loop=True,
    warmup_seconds=_number("SALE_WARMUP_SECONDS", 5),
    baseline_seconds=_number("SALE_BASELINE_SECONDS", 25),
    ramp_seconds=_number("SALE_RAMP_SECONDS", 5),
    hold_seconds=_number("SALE_HOLD_SECONDS", 600),
    fade_seconds=_number("SALE_FADE_SECONDS", 10),
    browsers=int(_number("SALE_BROWSERS", 40)),
    tourney_buyers=int(_number("SALE_TOURNEY_BUYERS", 3)),
    peak_buyers=int(_number("SALE_PEAK_BUYERS", 60)),
    source_addresses=identity.source_addresses_work(),
)
Sale.options = FlashSaleShape.options
