"""Sampling is decided once, at the edge, from the route table.

A real edge (the Procfile's, one worker) in front of the echoing test origins: what
the edge decided is read twice, in the `traceparent` the origin got (its sampled
flag is what every service behind follows) and in the span store (a traced request
has the edge's server span, an untraced one has no span at all).
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from edge_router.tracing import EdgeTracing
from observability.purchase import Traceparent
from observability.spans import Span
from observability.store import FileSpanStore, trace_wait
from tests.support.edge import Process, edge_process, set_mode
from tests.support.tracing import traced_env

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
TABLE = """
[origins]
shop = {{ env = "SHOP_URL", default = "http://127.0.0.1:8001" }}
orders = {{ env = "ORDERS_URL", default = "http://127.0.0.1:8002" }}

[defaults]
trace = {default}

[profiles]
{profiles}"""
BEHAVIOURS = """{profile} = [
  {{ name = "private", path = "/internal/*", kind = "deny", trace = 1 }},
  {{ name = "never", path = "/never/*", origin = "shop", trace = 0 }},
  {{ name = "always", path = "/always/*", origin = "shop", trace = 1 }},
  {{ name = "half", path = "/half/*", origin = "shop", trace = 0.5 }},
  {{ name = "default", path = "/*", origin = "shop" }},
]
"""


def _table(directory: Path, default: float) -> Path:
    profiles = "".join(
        BEHAVIOURS.format(profile=name) for name in ("legacy", "strangler")
    )
    path = directory / "routes.toml"
    path.write_text(TABLE.format(default=default, profiles=profiles))
    return path


def _edge(
    shop_origin: Process, orders_origin: Process, traces: Path, **extra: str
) -> Iterator[Process]:
    env: dict[str, Any] = {**traced_env(traces), **extra}
    with edge_process(shop_origin.url, orders_origin.url, workers=1, **env) as edge:
        yield edge


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sampling-traces")


@pytest.fixture(scope="module")
def store(traces: Path) -> FileSpanStore:
    return FileSpanStore(traces)


@pytest.fixture(scope="module")
def ratios_edge(
    shop_origin: Process,
    orders_origin: Process,
    traces: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Process]:
    """An edge whose table has behaviours traced never, always and half the time
    (the table's default 0.2; the environment says nothing of its own)."""
    table = _table(tmp_path_factory.mktemp("sampling-table"), default=0.2)
    yield from _edge(
        shop_origin, orders_origin, traces,
        EDGE_ROUTES_FILE=str(table), TRACES_SAMPLE_RATIO="",
    )  # fmt: skip


@pytest.fixture(scope="module")
def quiet_edge(
    shop_origin: Process, orders_origin: Process, traces: Path
) -> Iterator[Process]:
    """The project's table with its default ratio put to 0 by the environment:
    only the purchases, which say 1 themselves, are traced."""
    yield from _edge(shop_origin, orders_origin, traces, TRACES_SAMPLE_RATIO="0")


def _sent_on(answer: httpx.Response) -> tuple[str, str, bool]:
    """(trace id, span id, sampled) of the traceparent the origin got."""
    assert answer.status_code == 200, answer.text
    sent = [v for n, v in answer.json()["headers"] if n == "traceparent"]
    assert len(sent) == 1, sent
    match = TRACEPARENT.match(sent[0])
    assert match, sent[0]
    # the sampled flag is the lowest bit (the SDK sets 0x02 too: a random id)
    return match[1], match[2], bool(int(match[3], 16) & 1)


def _edge_spans(store: FileSpanStore, trace_id: str) -> list[Span]:
    return [
        s
        for s in store.spans(mentioning=frozenset({trace_id}))
        if s.trace_id == trace_id and s.service == "edge"
    ]


def _flushed(edge: Process, store: FileSpanStore) -> None:
    """Wait until the edge's worker wrote a traced request made after the others
    (one worker: its spans are written in the order they ended)."""
    marker = Traceparent.new()
    httpx.get(edge.url + "/always/marker", headers={"traceparent": marker.header})
    trace_wait(store, marker.trace_id, complete=lambda t: "edge" in t.services)


def test_a_behaviour_traced_always_sends_every_request_on_sampled(
    ratios_edge: Process, store: FileSpanStore
) -> None:
    # given a behaviour with `trace = 1`
    with httpx.Client(base_url=ratios_edge.url) as visitor:
        # when it gets 30 requests
        sent = [_sent_on(visitor.get(f"/always/{i}")) for i in range(30)]
    # then every one went on sampled, each in a trace of its own
    assert all(sampled for _, _, sampled in sent)
    assert len({trace_id for trace_id, _, _ in sent}) == 30
    # and each has the edge's server span, naming the behaviour
    last = sent[-1][0]
    trace = trace_wait(store, last, complete=lambda t: "edge" in t.services)
    server = [s for s in trace.spans if s.kind == "server"]
    assert [s.attributes["edge.route"] for s in server] == ["always"]


def test_a_behaviour_traced_never_makes_no_span_and_sends_an_unsampled_parent(
    ratios_edge: Process, store: FileSpanStore
) -> None:
    # given a behaviour with `trace = 0`
    with httpx.Client(base_url=ratios_edge.url) as visitor:
        # when it gets 30 requests
        answers = [visitor.get(f"/never/{i}") for i in range(30)]
    sent = [_sent_on(answer) for answer in answers]
    # then every one went on with a traceparent whose sampled flag is clear
    assert not any(sampled for _, _, sampled in sent)
    # in a trace of its own, which the access log can name
    assert len({trace_id for trace_id, _, _ in sent}) == 30
    # and the edge made no span for any of them
    _flushed(ratios_edge, store)
    for trace_id, _, _ in sent:
        assert _edge_spans(store, trace_id) == []


def _within_binomial(sampled: int, draws: int, ratio: float) -> bool:
    """Within 4.5 standard deviations of a fair binomial draw: a correct draw falls
    outside once in 150,000 runs; a wrong ratio (or none) far outside."""
    spread = 4.5 * (draws * ratio * (1 - ratio)) ** 0.5
    return abs(sampled - draws * ratio) <= spread


@pytest.mark.parametrize(
    ("prefix", "ratio"),
    [("/half/", 0.5), ("/other/", 0.2)],
    ids=["the behaviours own ratio", "the tables default for the rest"],
)
def test_a_fractional_ratio_traces_about_that_share_of_the_requests(
    ratios_edge: Process, prefix: str, ratio: float
) -> None:
    # given a behaviour with `trace = 0.5`, or one without, under a default of 0.2
    with httpx.Client(base_url=ratios_edge.url) as visitor:
        # when it gets 200 requests
        sent = [_sent_on(visitor.get(f"{prefix}{i}")) for i in range(200)]
    # then about that share went on sampled
    sampled = sum(1 for _, _, s in sent if s)
    assert _within_binomial(sampled, 200, ratio), sampled


@pytest.mark.parametrize(
    ("ratio", "expected"), [(0.0, 0), (1.0, 10_000), (0.3, 3_000), (0.05, 500)]
)
def test_the_draw_with_a_fixed_seed_keeps_the_ratio(
    ratio: float, expected: int
) -> None:
    # given the edge's draw with a fixed seed, when it decides 10,000 requests
    tracing = EdgeTracing(draw=random.Random(14))
    sampled = sum(tracing.sampled(ratio) for _ in range(10_000))
    # then it keeps the ratio (exactly, at 0 and 1)
    assert _within_binomial(sampled, 10_000, ratio), sampled
    assert sampled == expected or 0 < ratio < 1


def test_a_forged_sampled_flag_on_an_untraced_behaviour_is_ignored(
    quiet_edge: Process, store: FileSpanStore
) -> None:
    # given a visitor whose traceparent says "sampled", on a page traced at ratio 0
    forged = Traceparent.new()
    answer = httpx.get(
        quiet_edge.url + "/shop/rods/", headers={"traceparent": forged.header}
    )
    # then the page went on unsampled: the visitor's trace id, the edge's span id
    trace_id, span_id, sampled = _sent_on(answer)
    assert not sampled
    assert trace_id == forged.trace_id
    assert span_id != forged.span_id
    # and the edge recorded nothing for it
    _flushed_quiet(quiet_edge, store)
    assert _edge_spans(store, forged.trace_id) == []


PURCHASES = [
    ("legacy", "/shop/rods/muskie-casting-rod/buy/", "muskie-buy"),
    ("legacy", "/shop/rods/tourney-casting-rod/buy/", "tourney-buy"),
    ("legacy", "/basket/checkout", "checkout"),
    ("strangler", "/shop/rods/muskie-casting-rod/buy/", "muskie-buy"),
    ("strangler", "/api/orders/", "api-order"),
    ("strangler", "/shop/rods/tourney-casting-rod/buy/", "tourney-buy"),
    ("strangler", "/basket/checkout", "checkout"),
]


@pytest.mark.parametrize(("mode", "path", "route"), PURCHASES)
def test_a_forged_unsampled_flag_on_a_purchase_is_ignored(
    quiet_edge: Process, store: FileSpanStore, mode: str, path: str, route: str
) -> None:
    # given an edge tracing nothing but purchases, in the mode under test
    set_mode(quiet_edge, mode, workers=1)
    # when a visitor whose traceparent says "not sampled" buys
    forged = Traceparent.new()
    unsampled = forged.header[:-2] + "00"
    answer = httpx.post(
        quiet_edge.url + path,
        content=b"quantity=1",
        headers={
            "traceparent": unsampled,
            "tracestate": "vendor=quiet",
            "content-type": "text/plain",
        },
    )
    # then the purchase went on sampled, in the visitor's trace
    trace_id, _, sampled = _sent_on(answer)
    assert sampled
    assert trace_id == forged.trace_id
    # without the visitor's tracestate
    assert "tracestate" not in dict(answer.json()["headers"])
    # and the edge's server span says which purchase it was
    trace = trace_wait(store, trace_id, complete=lambda t: "edge" in t.services)
    server = [s for s in trace.spans if s.kind == "server"]
    assert [s.attributes["edge.route"] for s in server] == [route]
    assert [s.attributes["edge.mode"] for s in server] == [mode]


def _flushed_quiet(edge: Process, store: FileSpanStore) -> None:
    """`_flushed` for the project's table: a purchase is the traced request."""
    set_mode(edge, "legacy", workers=1)
    marker = Traceparent.new()
    httpx.post(
        edge.url + "/basket/checkout",
        content=b"x",
        headers={"traceparent": marker.header, "content-type": "text/plain"},
    )
    trace_wait(store, marker.trace_id, complete=lambda t: "edge" in t.services)


async def _websocket_hello(url: str, traceparent: str) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, headers={"traceparent": traceparent}) as ws,
    ):
        hello = str((await ws.receive()).data)
        await ws.close()
        return hello


@pytest.mark.parametrize(("prefix", "traced"), [("/always/", True), ("/never/", False)])
def test_a_websocket_follows_its_behaviours_ratio(
    ratios_edge: Process, store: FileSpanStore, prefix: str, traced: bool
) -> None:
    # given a visitor that opens a websocket, with a traceparent of its own
    sent = Traceparent.new()
    url = ratios_edge.url.replace("http://", "ws://") + prefix + "ws"
    hello = asyncio.run(_websocket_hello(url, sent.header))
    # then the origin answered through the edge
    assert hello == f"hello from shop {prefix}ws"
    # and the edge made a server span for the connection only where it samples
    _flushed(ratios_edge, store)
    spans = _edge_spans(store, sent.trace_id)
    assert [s.attributes.get("edge.route") for s in spans if s.kind == "server"] == (
        [prefix.strip("/")] if traced else []
    )


def test_a_denied_request_is_never_traced_whatever_its_ratio(
    ratios_edge: Process, store: FileSpanStore
) -> None:
    # given a deny behaviour whose table says `trace = 1`
    visitor = Traceparent.new()
    # when a visitor in a trace of its own asks for a path it denies
    answer = httpx.get(
        ratios_edge.url + "/internal/stock", headers={"traceparent": visitor.header}
    )
    # then the edge answers 404 itself and makes no span for it
    assert answer.status_code == 404
    assert answer.headers["x-edge-origin"] == "none"
    _flushed(ratios_edge, store)
    assert _edge_spans(store, visitor.trace_id) == []
