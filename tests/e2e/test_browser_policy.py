"""A real Chromium buys in the shop and in the sale, and reads the API docs, with
the Content-Security-Policy on: everything works and nothing is refused.

The browser reports every refusal as a `securitypolicyviolation` event; a script
run before each page's own listens for it, so a blocked script, style, image or
websocket shows up here however the page behaves otherwise.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.edge import Process
from tests.support.inline_code import policy_problems

pytestmark = [pytest.mark.browser, pytest.mark.stack]

MUSKIE = "/shop/rods/muskie-casting-rod/"
TOURNEY = "/shop/rods/tourney-casting-rod/"
VIOLATION = "csp-violation"
LISTEN = f"""
document.addEventListener("securitypolicyviolation", (event) => {{
  console.error("{VIOLATION} " + event.violatedDirective + " " + event.blockedURI);
}});
"""


class Watched:
    """A page whose policy violations and console messages are kept."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.console: list[str] = []
        page.on("console", lambda message: self.console.append(message.text))
        page.on("pageerror", lambda error: self.console.append(f"error: {error}"))
        page.add_init_script(LISTEN)

    def goto(self, url: str) -> None:
        """Open `url`, which must come with the strict policy (else nothing is
        refused because nothing is forbidden)."""
        response = self.page.goto(url)
        assert response is not None
        policy = response.headers.get("content-security-policy")
        assert policy_problems(policy) == [], (url, policy)

    def violations(self) -> list[str]:
        return [
            text
            for text in self.console
            if VIOLATION in text or "Content Security Policy" in text
        ]


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    yield Watched(page)
    page.close()


def test_a_blocked_inline_script_is_reported_as_a_violation(
    watched: Watched, strangler_edge: Process
) -> None:
    # Given a page of the shop, under its policy
    watched.goto(strangler_edge.url + TOURNEY)

    # When something slips an inline script into it
    ran = watched.page.evaluate(
        """() => {
          window.inlineRan = false;
          const script = document.createElement("script");
          script.textContent = "window.inlineRan = true;";
          document.body.appendChild(script);
          return window.inlineRan;
        }"""
    )

    # Then the browser refused to run it, and said so
    assert ran is False
    expect(watched.page.locator("h1")).to_contain_text("Tourney Casting Rod")
    assert any("script-src" in text for text in watched.violations())


def test_the_shop_purchase_works_under_the_policy(
    watched: Watched, strangler_edge: Process
) -> None:
    page = watched.page
    # Given the Tourney rod's page in the legacy shop, its style sheet applied
    watched.goto(strangler_edge.url + TOURNEY)
    expect(page.locator("h1")).to_contain_text("Tourney Casting Rod")
    assert page.evaluate("document.styleSheets.length") >= 1

    # When the visitor buys one now
    buy = page.locator('form[action$="/buy/"]')
    buy.locator('input[name="email"]').fill("chromium-csp@example.com")
    buy.locator('input[name="quantity"]').fill("1")
    buy.locator('button[type="submit"]').first.click()

    # Then the confirmation shows, and the browser refused nothing on the way
    expect(page).to_have_url(re.compile(r".*/orders/[A-Z0-9-]+/$"))
    expect(page.locator("body")).to_contain_text("seconds to process your order")
    assert watched.violations() == []


def test_the_sale_purchase_and_its_live_status_work_under_the_policy(
    watched: Watched, strangler_edge: Process
) -> None:
    page = watched.page
    # Every frame of every websocket, counted from the socket's creation: a frame
    # sent on connect may arrive before a test could start waiting for it.
    frames: dict[str, int] = {}

    def socket_opened(socket: Any) -> None:
        # Each socket apart: the minisite and the order's page open the same URL.
        key = f"{len(frames)} {socket.url}"
        frames[key] = 0

        def counted(_payload: Any) -> None:
            frames[key] += 1

        socket.on("framereceived", counted)

    page.on("websocket", socket_opened)
    # Given the Muskie page: the sale's static minisite, served by the edge itself
    watched.goto(strangler_edge.url + MUSKIE)
    expect(page.locator("h1")).to_contain_text("Muskie Casting Rod")
    expect(page.locator("[data-site=stock]")).to_have_text(re.compile(r"\d+ left"))

    # When the buyer buys one with buy it now (through the JSON API)
    buy = page.locator("form[data-site=buy-form]")
    buy.locator('input[name="email"]').fill("chromium-sale@example.com")
    buy.locator('input[name="quantity"]').fill("1")
    buy.locator('button[type="submit"]').click()

    # Then the minisite follows the order live to the warehouse and back
    expect(page.locator("[data-site=status-label]")).to_have_text(
        "fulfilled", timeout=30_000
    )
    # and so does the order's own page, server-rendered, over its own websocket
    page.locator("[data-site=page-link]").click()
    expect(page).to_have_url(re.compile(r".*/orders/[0-9a-f-]{36}/\?token=.+$"))
    expect(page.locator("[data-live=status-label]")).to_have_text(
        "fulfilled", timeout=30_000
    )
    # over websockets the policy let through, each of which said something (the
    # order's page is rendered "fulfilled" already: its script may open its socket,
    # and the state sent on connect land, a moment after the label is checked)
    deadline = time.monotonic() + 10
    while (len(frames) < 2 or not all(frames.values())) and (
        time.monotonic() < deadline
    ):
        page.wait_for_timeout(100)
    assert len(frames) >= 2, frames
    assert all(count > 0 for count in frames.values()), frames
    # and the browser refused nothing: scripts, styles, images, websockets
    assert watched.violations() == []


def test_the_api_docs_render_under_the_policy(
    watched: Watched, strangler_edge: Process
) -> None:
    page = watched.page

    watched.goto(strangler_edge.url + "/api/docs/")

    expect(page.locator(".swagger-ui .info .title")).to_contain_text(
        "lee.fishing orders API", timeout=15_000
    )
    expect(page.locator(".opblock").first).to_be_visible()
    assert watched.violations() == []
