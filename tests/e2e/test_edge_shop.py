"""The public entry point: a visitor, and a real Chromium, buy through the edge router.

The edge (uvicorn, its own process) fronts the shop (gunicorn) in legacy mode, as
`make demo` runs them: what the visitor sees must be the shop, CSRF and all.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from tests.support.edge import Process, edge_process, set_mode
from tests.support.processes import RunningService, free_port
from tests.support.stack import fulfillment_refs

MUSKIE = "/shop/rods/muskie-casting-rod/"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "reports" / "screenshots"


@pytest.fixture(scope="module")
def edge(shop: RunningService) -> Iterator[Process]:
    # The orders service is not part of this stack: nothing listens there.
    with edge_process(shop.url, f"http://127.0.0.1:{free_port()}") as running:
        set_mode(running, "legacy")
        yield running


def test_a_visitor_buys_the_muskie_rod_through_the_edge(edge: Process) -> None:
    with httpx.Client(base_url=edge.url) as visitor:
        # given the front door, which the shop redirects to its home page
        home = visitor.get("/", follow_redirects=True)
        assert home.status_code == 200
        assert home.headers["x-edge-origin"] == "shop"
        # when the visitor buys one Muskie rod with buy now
        page = visitor.get(MUSKIE)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token
        answer = visitor.post(
            MUSKIE + "buy/",
            data={
                "csrfmiddlewaretoken": token.group(1),
                "quantity": "1",
                "email": "edge-e2e@example.com",
            },
            headers={"Origin": edge.url, "Referer": edge.url + MUSKIE},
        )
        # then the shop took the order, and the warehouse fulfilled it
        assert answer.status_code == 303
        confirmation = visitor.get(answer.headers["location"])
        assert "seconds to process your order" in confirmation.text
    number = re.search(r"/orders/([A-Z0-9-]+)/", answer.headers["location"])
    assert number
    assert fulfillment_refs("e2e_fulfillment").count(number.group(1)) == 1


@pytest.mark.browser
def test_chromium_buys_through_the_edge(edge: Process) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: `make browser` installs it")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update"],
        )  # fmt: skip
        try:
            page = chromium.new_page(viewport={"width": 1280, "height": 900})
            # given the Muskie page opened at the edge's address
            page.goto(edge.url + MUSKIE)
            expect(page.locator("h1")).to_contain_text("Muskie Casting Rod")
            # when the browser posts buy now (it sends Origin: the edge's address)
            buy = page.locator('form[action$="/buy/"]')
            buy.locator('input[name="email"]').fill("chromium-edge@example.com")
            buy.locator('input[name="quantity"]').fill("1")
            buy.locator('button[type="submit"], input[type="submit"]').first.click()
            # then the shop's CSRF check passes through the edge and the order is made
            expect(page).to_have_url(re.compile(r".*/orders/[A-Z0-9-]+/$"))
            assert page.url.startswith(edge.url)
            expect(page.locator("body")).to_contain_text(
                "seconds to process your order"
            )
            page.screenshot(path=SCREENSHOTS / "confirmation-through-edge.png")
        finally:
            chromium.close()
