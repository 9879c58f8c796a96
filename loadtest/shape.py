"""The flash sale's Locust shape: quiet browsing, the sale opens, buyers rush in, fade.

The phases are loadtest/phases.py's. The shoppers' crowd (browsers, Tourney buyers)
runs through all of them; Locust's Muskie buyers (closed loop: `--closed-loop`, and
`make sale-ui`) ramp to the peak, hold and fade. The open-loop buyers are not
Locust's (loadtest/openloop.py).
"""

from __future__ import annotations

import math

from locust import LoadTestShape, User

from loadtest.config import LoadOptions
from loadtest.phases import QUIET, phase_at, phases
from loadtest.users import Browser, MuskieBuyer, Sale, TourneyBuyer

__all__ = ["QUIET", "FlashSaleShape", "configure_counts", "phase_at", "phases"]


def configure_counts(options: LoadOptions) -> None:
    """Browsers and Tourney buyers are a fixed crowd; the rest are Muskie buyers.

    The three classes are given on every tick: Locust spawns fixed-count users only
    when its class list is first set, so Tourney buyers are there from the start and
    wait for the sale (Sale.phase) before buying.
    """
    Browser.fixed_count = options.browsers
    TourneyBuyer.fixed_count = options.tourney_buyers


class FlashSaleShape(LoadTestShape):
    options: LoadOptions | None = None

    def __init__(self, options: LoadOptions | None = None) -> None:
        super().__init__()
        if options is not None:
            self.options = options
        if self.options is None:
            self.options = LoadOptions(
                host="", mode="ui", run_tag="ui", out_dir="", closed_loop=True
            )
        configure_counts(self.options)

    def tick(self) -> tuple[int, float, list[type[User]]] | None:
        o = self.options
        assert o is not None
        elapsed = self.get_run_time()
        phase = phase_at(o, elapsed)
        Sale.phase = phase
        if phase == "done":
            return None
        crowd = o.browsers + o.tourney_buyers
        if o.crowd == "shoppers":
            shoppers: list[type[User]] = [Browser, TourneyBuyer]
            return crowd, float(max(crowd, 1)), shoppers
        buyers = self._buyers(phase, elapsed)
        if o.crowd == "buyers":
            rate = 100.0 if phase == "fade" else o.peak_buyers / max(o.ramp_seconds, 1)
            only_buyers: list[type[User]] = [MuskieBuyer]
            return buyers, max(rate, 1.0), only_buyers
        everyone: list[type[User]] = [Browser, TourneyBuyer, MuskieBuyer]
        if phase in QUIET:
            return crowd, float(max(crowd, 1)), everyone
        if phase in {"ramp", "hold"}:
            rate = (o.tourney_buyers + o.peak_buyers) / max(o.ramp_seconds, 1.0)
            return crowd + buyers, rate, everyone
        return crowd + buyers, 100.0, everyone

    def _buyers(self, phase: str, elapsed: float) -> int:
        """Muskie buyers wanted now: none before the sale, the peak, then fewer."""
        o = self.options
        assert o is not None
        if phase in QUIET:
            return 0
        if phase in {"ramp", "hold"}:
            return o.peak_buyers
        left = phases(o)[-1].end - elapsed
        return max(math.ceil(o.peak_buyers * left / max(o.fade_seconds, 1.0)), 0)
