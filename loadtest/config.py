"""The sale run's options and where the stack is, with defaults for a 2-core laptop."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from common.stack_secrets import secrets_ensure, secrets_path

if TYPE_CHECKING:
    from loadtest.faults import ScheduledFault

MODES = ("legacy", "strangler")
# Who one load process plays. A sale run starts three, so the rush's own load
# generating never delays the requests the run measures: the shoppers (Locust:
# browsers and Tourney buyers, the everyday background), the watcher (the Tourney page
# at a fixed rate, open loop: the request the run times) and the flash-sale buyers
# (open-loop arrivals; Locust's closed loop with --closed-loop). Locust's web UI
# plays the shoppers and the closed-loop buyers in one process ("everyone").
CROWDS = ("shoppers", "watcher", "buyers")
# The crowds played by loadtest/openloop.py (asyncio, aiohttp) rather than Locust.
OPEN_LOOP_CROWDS = frozenset({"watcher", "buyers"})
EVERYONE = "everyone"
MUSKIE_SLUG = "muskie-casting-rod"
MUSKIE_SKU = "ROD-MUSKIE"
TOURNEY_SKU = "ROD-TOURNEY"
MUSKIE_PAGE = "/shop/rods/muskie-casting-rod/"
MUSKIE_BUY = "/shop/rods/muskie-casting-rod/buy/"
TOURNEY_PAGE = "/shop/rods/tourney-casting-rod/"
TOURNEY_BUY = "/shop/rods/tourney-casting-rod/buy/"
ORDERS_API = "/api/orders/"
# Every answer names its trace (common/middleware.py, the edge's own answers too).
TRACE_ID_HEADER = "X-Trace-Id"
# Plenty, so no Tourney buyer is ever turned away: the Tourney rod is not on sale.
TOURNEY_STOCK = 100_000


@dataclass(frozen=True)
class LoadOptions:
    """What the load generator does in one mode (sent to the Locust process as JSON)."""

    host: str
    mode: str
    run_tag: str
    out_dir: str
    # Browsers only, not measured: new connections, first renders, cold caches.
    warmup_seconds: float = 5.0
    baseline_seconds: float = 24.0
    # Open loop (the default): `buyers` Muskie buyers arrive at `arrival_rate` a
    # second, each once (phase "arrivals"); the watcher goes on for `after_seconds`
    # while the queue drains (phase "after").
    closed_loop: bool = False
    buyers: int = 1200
    arrival_rate: float = 60.0
    # uniform: one every 1/rate s; poisson: exponential gaps of mean 1/rate (seeded).
    arrival_process: str = "uniform"
    after_seconds: float = 22.0
    # The Tourney page, fetched this many times a second from the warm-up to the end.
    tourney_rate: float = 25.0
    # Closed loop (--closed-loop): Locust's buyers ramp to the peak, hold, fade.
    ramp_seconds: float = 5.0
    hold_seconds: float = 40.0
    fade_seconds: float = 10.0
    browsers: int = 5
    tourney_buyers: int = 3
    peak_buyers: int = 60
    # Share of Muskie buyers who follow their order by websocket (the rest poll,
    # no faster than once every poll_seconds).
    websocket_share: float = 0.8
    follow_timeout: float = 60.0
    poll_seconds: float = 1.0
    # A first try and up to three retries after a 429 or 503 (after Retry-After).
    max_attempts: int = 4
    # The longest Retry-After a buyer waits (a longer one is cut to this).
    retry_after_max: float = 10.0
    request_timeout: float = 15.0
    # Each Muskie buyer connects from an address of its own (127.x.y.z).
    source_addresses: bool = True
    # shoppers | buyers | everyone (see CROWDS)
    crowd: str = EVERYONE
    # Wall-clock second the load starts at, so both crowds keep the same phases
    # (0: as soon as the process is ready).
    start_at: float = 0.0

    @property
    def arrival_seconds(self) -> float:
        """How long the open-loop buyers take to arrive (the "arrivals" phase)."""
        return self.buyers / self.arrival_rate

    @property
    def sale_seconds(self) -> float:
        if self.closed_loop:
            return self.ramp_seconds + self.hold_seconds + self.fade_seconds
        return self.arrival_seconds + self.after_seconds

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LoadOptions:
        return cls(**data)


def _internal_token(env: Mapping[str, str]) -> str:
    """The variable, else the stack's secrets file: made now when there is none, so
    the stack this run may start (`make demo`'s launcher) takes the same token."""
    return (
        env.get("INTERNAL_API_TOKEN", "")
        or (secrets_ensure(secrets_path(env))["INTERNAL_API_TOKEN"])
    )


@dataclass(frozen=True)
class Endpoints:
    """Where each part of the stack answers; the load goes to the edge only."""

    edge: str
    shop: str
    orders: str
    warehouse: str
    redis_url: str
    fulfillment_queue: str
    internal_token: str
    edge_workers: int
    traces_dir: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Endpoints:
        env = os.environ if env is None else env

        def url(name: str, port_name: str, port: int) -> str:
            explicit = env.get(name, "")
            return explicit.rstrip("/") or (
                f"http://127.0.0.1:{env.get(port_name) or port}"
            )

        return cls(
            edge=url("EDGE_URL", "EDGE_PORT", 8000),
            shop=url("SHOP_URL", "SHOP_PORT", 8001),
            orders=url("ORDERS_URL", "ORDERS_PORT", 8002),
            warehouse=url("WAREHOUSE_URL", "WAREHOUSE_PORT", 8003),
            redis_url=env.get("REDIS_URL", "") or "redis://127.0.0.1:6379/0",
            fulfillment_queue=env.get("FULFILLMENT_QUEUE", "") or "fulfillment",
            internal_token=_internal_token(env),
            edge_workers=int(env.get("EDGE_WORKERS", "") or 2),
            traces_dir=env.get("TRACES_DIR", ""),
        )

    def with_urls(self, **urls: str | None) -> Endpoints:
        given = {k: v.rstrip("/") for k, v in urls.items() if v}
        return Endpoints(**{**asdict(self), **given})


@dataclass(frozen=True)
class RunOptions:
    """One `sale run`: the modes, the load in each, and what to do around it."""

    modes: tuple[str, ...] = MODES
    units: int = 300
    load: dict[str, Any] = field(default_factory=dict)
    drain_timeout: float = 120.0
    reports_dir: str = "reports"
    start_stack: bool = True
    traces: bool = True
    fulfillment_concurrency: int = 3
    # Rounds of the modes (legacy, strangler, legacy, ...); the report gives the
    # median and spread of each headline figure when more than one.
    repeat: int = 1
    # Faults played inside each mode's sale (--fault), and --chaos (loadtest/faults.py).
    faults: tuple[ScheduledFault, ...] = ()
    chaos: bool = False
    # The edge's engine (EDGE_ENGINE): the stack this run starts runs it, and a
    # running stack must be on it.
    edge_engine: str = "python"


def fulfillment_concurrency(env: Mapping[str, str] | None = None) -> int:
    """The queue's concurrency the strangler goal is checked against."""
    env = os.environ if env is None else env
    raw = env.get("FULFILLMENT_CONCURRENCY", "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else 3
