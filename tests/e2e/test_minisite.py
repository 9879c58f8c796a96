"""The Muskie sale's static minisite in a real Chromium, through the edge in
strangler mode: a buyer orders (with and without JavaScript) and follows the order
to "fulfilled"; once the allocation is gone, the next buyers see "sold out"."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.edge import Process
from tests.support.orders_stack import OrdersStack

pytestmark = [pytest.mark.browser, pytest.mark.stack]

MUSKIE = "/shop/rods/muskie-casting-rod/"
UNITS = 2


@pytest.fixture
def small_sale(sale_stack: OrdersStack) -> Iterator[OrdersStack]:
    """The sale reopened with UNITS rods (its site rebuilt); the session's sale of 40
    back afterwards."""
    sale_stack.sale_reopen(UNITS)
    try:
        yield sale_stack
    finally:
        sale_stack.sale_reopen(40)


def buyer(browser: Browser, edge: Process, *, javascript: bool = True) -> Page:
    """A buyer of their own (no shared storage) on the Muskie page."""
    page = browser.new_context(java_script_enabled=javascript).new_page()
    response = page.goto(edge.url + MUSKIE)
    assert response is not None
    assert response.headers["x-edge-origin"] == "muskie-site"
    expect(page.locator("h1")).to_contain_text("Muskie Casting Rod")
    return page


def buy(page: Page, email: str) -> None:
    form = page.locator("form[data-site=buy-form]")
    form.locator('input[name="email"]').fill(email)
    form.locator('input[name="quantity"]').fill("1")
    form.locator('button[type="submit"]').click()


def test_buyers_order_on_the_minisite_until_it_says_sold_out(
    browser: Browser, small_sale: OrdersStack, strangler_edge: Process
) -> None:
    # given a buyer who opened the page early, while rods were left
    late = buyer(browser, strangler_edge)
    expect(late.locator("[data-site=stock]")).to_have_text(re.compile(r"\d+ left"))

    # when a buyer without JavaScript sends the plain form
    plain = buyer(browser, strangler_edge, javascript=False)
    buy(plain, "no-script@example.com")
    # then the orders service takes it and shows the order's own page
    expect(plain).to_have_url(re.compile(r".*/orders/[0-9a-f-]{36}/$"))
    expect(plain.locator("h1")).to_contain_text("Your order number is")

    # when a buyer with JavaScript buys the last rod
    first = buyer(browser, strangler_edge)
    buy(first, "first@example.com")
    # then the minisite shows the order and follows it to "fulfilled"
    expect(first.locator("[data-site=number]")).to_have_text(re.compile(r".+"))
    expect(first.locator("[data-site=status-label]")).to_have_text(
        "fulfilled", timeout=30_000
    )
    number = first.locator("[data-site=number]").inner_text()
    assert number in small_sale.warehouse_refs()

    # when the early buyer presses buy now after the allocation is gone
    buy(late, "late@example.com")
    # then they are told it is sold out, and the form is gone
    expect(late.locator("[data-site=sold-out-title]")).to_have_text("Sold out")
    expect(late.locator("form[data-site=buy-form]")).to_be_hidden()

    # and a buyer who comes now sees "sold out" at once (the sale API's stock)
    next_buyer = buyer(browser, strangler_edge)
    expect(next_buyer.locator("[data-site=stock]")).to_have_text("Sold out")
    expect(next_buyer.locator("[data-site=sold-out]")).to_be_visible()
    expect(next_buyer.locator("form[data-site=buy-form]")).to_be_hidden()

    # and exactly the allocation was sold
    board = httpx.get(strangler_edge.url + "/api/sales/muskie-casting-rod/").json()
    assert (board["accepted"], board["remaining"]) == (UNITS, 0)
