"""What a simulated buyer is and reads: its identity, the page's form, the 303."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from loadtest import identity
from loadtest.buyer import Buyer
from loadtest.config import LoadOptions
from loadtest.journal import Attempt, Journal
from loadtest.pages import buy_form, order_link
from loadtest.stats import figures, percentile


def test_each_attempt_has_an_address_the_reconciliation_can_read_back() -> None:
    address = identity.email("m", 17, 2, "07eafal")

    assert identity.email_parse(address) == ("m", 17, 2, "07eafal")
    assert identity.email_parse("angler@example.com") is None
    assert identity.email_parse("m17.x@loadtest.example") is None


def test_every_buyer_gets_a_loopback_address_of_its_own() -> None:
    addresses = {identity.source_address(n) for n in range(1, 70_000)}

    assert len(addresses) == 69_999
    assert all(a.startswith("127.") and not a.endswith(".0") for a in addresses)


def test_the_buy_form_is_read_off_either_services_page() -> None:
    shop = (
        '<form class="buy-form panel" method="post" action="/shop/rods/x/buy/">'
        '<input type="hidden" name="csrfmiddlewaretoken" value="tok123">'
    )
    orders = shop + '<input type="hidden" name="idempotency_key" value="k9">'
    sold_out = '<div class="panel"><h2 class="panel-title">Sold out</h2></div>'

    from_shop, from_orders = buy_form(shop), buy_form(orders)
    assert from_shop is not None
    assert from_shop.idempotency_key is None
    assert from_orders is not None
    assert from_orders.idempotency_key == "k9"
    assert buy_form(sold_out) is None


def test_the_303_names_a_shop_order_or_a_new_order() -> None:
    legacy = order_link("/orders/LF-26AEPGXP/")
    new = order_link(
        "/shop/rods/muskie-casting-rod/orders/5b0b3c8e-9d1f-4c53-9f64-0d2b2f7e1a11/"
    )

    assert legacy is not None
    assert legacy.number == "LF-26AEPGXP"
    assert new is not None
    assert new.order_id == "5b0b3c8e-9d1f-4c53-9f64-0d2b2f7e1a11"
    assert order_link("/shop/") is None


def test_figures_of_a_window() -> None:
    samples = [
        (10.0 + i, "tourney page", 200, float(ms), ms != 500, "")
        for i, ms in enumerate([10, 20, 30, 40, 500])
    ]

    seen = figures(samples, which=lambda n: n == "tourney page", start=11, end=15)

    assert seen["requests"] == 4
    assert seen["failures"] == 1
    assert seen["rps"] == 1.0
    assert seen["p50_ms"] == 35.0
    assert percentile([], 99) is None


def test_a_buyer_reads_lowercase_header_names_as_http_means_them(
    tmp_path: Path,
) -> None:
    record, retry_after, journal = asyncio.run(_buy_from_a_busy_server(tmp_path))

    assert record.status == 503
    assert retry_after == 3.0
    assert [s[5] for s in journal.samples] == ["ab" * 16]


async def _buy_from_a_busy_server(
    tmp_path: Path,
) -> tuple[Attempt, float | None, Journal]:
    # uvicorn and the edge send header names lowercase; a dict of them lost the
    # trace id of every buy and the server's Retry-After
    async def answer(request: web.Request) -> web.Response:
        return web.json_response(
            {"error": "busy"},
            status=503,
            headers={"retry-after": "3", "x-trace-id": "ab" * 16},
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        options = LoadOptions(
            host=f"http://127.0.0.1:{port}",
            mode="strangler",
            run_tag="t",
            out_dir=str(tmp_path),
            source_addresses=False,
        )
        journal = Journal()
        buyer = Buyer(options=options, journal=journal, number=1, due=time.time())
        async with aiohttp.ClientSession(base_url=options.host) as buyer.session:
            record, retry_after = await buyer._attempt(1)
    finally:
        await runner.cleanup()
    return record, retry_after, journal
