"""A real Chromium, driven by Playwright, buys the Muskie rod in the legacy shop."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.support.stack import fulfillment_refs

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "reports" / "screenshots"


@pytest.mark.browser
def test_browse_home_rods_muskie_buy_now_confirmation(browser, shop):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    # given the home page
    page.goto(shop.url + "/")
    expect(page).to_have_url(shop.url + "/shop/")
    page.screenshot(path=SCREENSHOTS / "home.png", full_page=True)
    # when the visitor goes to Rods, then to the Muskie Casting Rod
    page.get_by_role("link", name="Rods").first.click()
    expect(page).to_have_url(shop.url + "/shop/rods/")
    page.get_by_role("link", name="Muskie Casting Rod").first.click()
    expect(page).to_have_url(shop.url + "/shop/rods/muskie-casting-rod/")
    expect(page.locator("h1")).to_contain_text("Muskie Casting Rod")
    page.screenshot(path=SCREENSHOTS / "muskie.png", full_page=True)
    # and buys one now
    buy = page.locator('form[action$="/buy/"]')
    buy.locator('input[name="email"]').fill("browser@example.com")
    buy.locator('input[name="quantity"]').fill("1")
    buy.locator('button[type="submit"], input[type="submit"]').first.click()
    # then the confirmation says the order went through and how long it took
    expect(page).to_have_url(re.compile(r".*/orders/[A-Z0-9-]+/$"))
    expect(page.locator("body")).to_contain_text("seconds to process your order")
    page.screenshot(path=SCREENSHOTS / "confirmation.png", full_page=True)
    found = re.search(r"/orders/([A-Z0-9-]+)/$", page.url)
    assert found is not None, page.url
    number = found.group(1)
    page.close()
    # and the warehouse packed exactly that order, once
    assert fulfillment_refs("e2e_fulfillment").count(number) == 1
