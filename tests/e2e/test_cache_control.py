"""What a cache in front of the edge is told: every answer of the shop and the
orders service says how it may be cached, through the edge, in both modes.

Pages for everyone (a catalogue page for a visitor without a session, the sale
board) have a lifetime; anything personal (a form's CSRF token, a basket, an
account, an order) is `private, no-store`, and so is every API answer.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.edge import Process, set_mode

pytestmark = pytest.mark.stack

MUSKIE = "/shop/rods/muskie-casting-rod/"
TOURNEY = "/shop/rods/tourney-casting-rod/"
PUBLIC = "public, max-age=60"
PERSONAL = "private, no-store"
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')

# (path, Cache-Control in legacy mode, in strangler mode) for an anonymous visitor
PAGES = [
    ("/shop/", PUBLIC, PUBLIC),
    ("/shop/rods/", PUBLIC, PUBLIC),
    ("/shop/reels/", PUBLIC, PUBLIC),
    ("/search/?q=rod", PUBLIC, PUBLIC),
    (TOURNEY, PERSONAL, PERSONAL),  # its buy and basket forms carry a CSRF token
    # strangler: the sale's static minisite, one file for everyone (its buy form has
    # no CSRF token; the orders service checks the Origin), with the table's lifetime
    (MUSKIE, PERSONAL, "public, max-age=60"),
    ("/basket/", PERSONAL, PERSONAL),
    ("/basket/checkout", PERSONAL, PERSONAL),
    ("/accounts/login/", PERSONAL, PERSONAL),
    ("/accounts/signup/", PERSONAL, PERSONAL),
    ("/accounts/orders/", PERSONAL, PERSONAL),
    ("/orders/NO-SUCH-ORDER/", PERSONAL, PERSONAL),
    ("/shop/no-such-category/", PERSONAL, PERSONAL),
    (f"{MUSKIE}orders/{uuid.uuid4()}/", PERSONAL, PERSONAL),
    ("/sale/muskie-casting-rod/", PERSONAL, "public, max-age=5"),
    (f"/api/orders/{uuid.uuid4()}/", PERSONAL, PERSONAL),
]


@pytest.fixture(params=["legacy", "strangler"])
def edge(request: pytest.FixtureRequest, strangler_edge: Process) -> Iterator[Process]:
    set_mode(strangler_edge, str(request.param))
    try:
        yield strangler_edge
    finally:
        set_mode(strangler_edge, "strangler")


def mode_of(edge: Process) -> str:
    return str(httpx.get(edge.url + "/_edge/healthz", timeout=5).json()["mode"])


def test_every_page_says_how_it_may_be_cached_in_both_modes(edge: Process) -> None:
    column = 1 if mode_of(edge) == "legacy" else 2
    for page in PAGES:
        path, expected = page[0], page[column]
        # given an anonymous visitor, when it asks for the page through the edge
        answer = httpx.get(edge.url + path, timeout=10)
        # then the answer says how it may be cached, and nothing is left to a guess
        assert_cached_as(answer, expected)
        if expected.startswith("public"):
            assert "set-cookie" not in answer.headers, path


def assert_cached_as(answer: httpx.Response, expected: str) -> None:
    """Exactly `expected` for a public page; for a personal one at least `private,
    no-store` (Django's never_cache, on the sign-in page, says more)."""
    header = answer.headers.get("cache-control", "")
    where = (str(answer.url), answer.status_code, header)
    if expected == PERSONAL:
        directives = {d.strip() for d in header.split(",")}
        assert {"private", "no-store"} <= directives, where
    else:
        assert header == expected, where


def test_a_catalogue_page_is_personal_once_the_visitor_has_a_basket(
    edge: Process,
) -> None:
    with httpx.Client(base_url=edge.url, timeout=10) as visitor:
        # given a visitor who put a Tourney rod in its basket
        page = visitor.get(TOURNEY)
        token = CSRF.search(page.text)
        assert token is not None
        product = re.search(r'name="product" value="([^"]+)"', page.text)
        added = visitor.post(
            "/basket/add/",
            data={
                "csrfmiddlewaretoken": token.group(1),
                "product": product.group(1) if product else "",
                "quantity": "1",
            },
            headers={"Referer": edge.url + TOURNEY},
        )
        # then the POST's answer is not to be stored
        assert_cached_as(added, PERSONAL)
        # and the category page, which now shows its basket count, is personal
        category = visitor.get("/shop/rods/")
        assert category.status_code == 200
        assert_cached_as(category, PERSONAL)
        assert "cookie" in category.headers.get("vary", "").lower()


def test_static_files_keep_their_own_lifetime(edge: Process) -> None:
    page = httpx.get(edge.url + "/shop/", timeout=10)
    stylesheet = re.search(r'href="(/static/[^"]+\.css)"', page.text)
    assert stylesheet is not None
    answer = httpx.get(edge.url + stylesheet.group(1), timeout=10)
    assert answer.status_code == 200
    assert "max-age=" in answer.headers["cache-control"]
    assert "no-store" not in answer.headers["cache-control"]
