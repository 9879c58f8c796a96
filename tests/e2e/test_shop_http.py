"""The legacy shop as a visitor sees it: real HTTP, cookies, CSRF, redirects."""

from __future__ import annotations

import re

import httpx

from tests.support.stack import fulfillment_refs

MUSKIE = "/shop/rods/muskie-casting-rod/"


def _csrf(page: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert match, "the form carries a CSRF token"
    return match.group(1)


def test_a_visitor_buys_the_muskie_rod_with_buy_now(shop):
    with httpx.Client(base_url=shop.url) as visitor:
        # given the Muskie product page
        page = visitor.get(MUSKIE)
        assert page.status_code == 200
        assert "Muskie Casting Rod" in page.text
        assert "149.99" in page.text
        # when the visitor buys one with buy now
        answer = visitor.post(
            MUSKIE + "buy/",
            data={
                "csrfmiddlewaretoken": _csrf(page.text),
                "quantity": "1",
                "email": "e2e@example.com",
            },
            headers={"Referer": shop.url + MUSKIE},
        )
        # then a 303 leads to the confirmation, which says how long the order took
        assert answer.status_code == 303
        location = answer.headers["location"]
        confirmation = visitor.get(location)
        assert confirmation.status_code == 200
        assert re.search(
            r"It took \d+\.\d\d seconds to process your order", confirmation.text
        )
        found = re.search(r"/orders/([A-Z0-9-]+)/", location)
        assert found, location
        number = found.group(1)
    # and the warehouse fulfilled exactly that order, and another visitor cannot see it
    assert fulfillment_refs("e2e_fulfillment").count(number) == 1
    assert httpx.get(shop.url + location).status_code == 404


def test_a_post_without_the_csrf_token_is_refused_and_writes_nothing(shop):
    before = len(fulfillment_refs("e2e_fulfillment"))
    answer = httpx.post(
        shop.url + MUSKIE + "buy/", data={"quantity": "1", "email": "x@example.com"}
    )
    assert answer.status_code == 403
    assert len(fulfillment_refs("e2e_fulfillment")) == before


def test_the_bystander_page_and_static_files_are_served(shop):
    page = httpx.get(shop.url + "/shop/rods/tourney-casting-rod/")
    assert page.status_code == 200
    assert "Tourney Casting Rod" in page.text
    found = re.search(r'href="(/static/[^"]+\.css)"', page.text)
    assert found, page.text
    css = found.group(1)
    assert httpx.get(shop.url + css).status_code == 200
