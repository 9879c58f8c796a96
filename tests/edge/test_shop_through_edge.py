"""The real legacy shop behind the running edge: pages, CSRF forms, cookies, redirects,
and a live flip between modes under load without one failed request."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

import httpx

from tests.edge.cases import MUSKIE
from tests.support.edge import MUSKIE_PAGE, Process, set_mode
from tests.support.processes import RunningService


def csrf_token(page: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert match, "the form carries a CSRF token"
    return match.group(1)


def test_the_shop_is_served_through_the_edge(shop_edge: Process) -> None:
    set_mode(shop_edge, "legacy")
    # given the edge's front door, when a visitor opens it
    home = httpx.get(shop_edge.url + "/", follow_redirects=False)
    # then the shop's redirect to /shop/ comes through untouched
    assert home.status_code == 302
    assert home.headers["location"] == "/shop/"
    assert home.headers["x-edge-origin"] == "shop"
    page = httpx.get(shop_edge.url + "/shop/rods/tourney-casting-rod/")
    assert page.status_code == 200
    assert "Tourney Casting Rod" in page.text
    # and the shop's static files too
    css = re.search(r'href="(/static/[^"]+\.css)"', page.text)
    assert css
    assert httpx.get(shop_edge.url + css.group(1)).status_code == 200


def test_a_form_post_with_csrf_buys_through_the_edge(
    shop_edge: Process, shop: RunningService
) -> None:
    # given the Muskie page in legacy mode, opened through the edge by a browser-like
    # visitor that sends Origin and Referer as browsers do
    set_mode(shop_edge, "legacy")
    with httpx.Client(base_url=shop_edge.url) as visitor:
        page = visitor.get(MUSKIE)
        assert page.status_code == 200
        assert page.headers["x-edge-origin"] == "shop"
        assert "csrftoken" in visitor.cookies
        # when the visitor posts the buy-now form
        answer = visitor.post(
            MUSKIE + "buy/",
            data={
                "csrfmiddlewaretoken": csrf_token(page.text),
                "quantity": "1",
                "email": "edge@example.com",
            },
            headers={"Origin": shop_edge.url, "Referer": shop_edge.url + MUSKIE},
        )
        # then the shop accepts it (the Host it saw matches the Origin) and redirects
        assert answer.status_code == 303, answer.text[:500]
        assert answer.headers["x-edge-route"] == "muskie-buy"
        location = answer.headers["location"]
        # and the session cookie the shop set comes back through the edge
        confirmation = visitor.get(location)
        assert confirmation.status_code == 200
        assert "seconds to process your order" in confirmation.text
    # and another visitor cannot see that order, through the edge or not
    assert httpx.get(shop_edge.url + location).status_code == 404
    assert httpx.get(shop.url + location).status_code == 404


def test_a_form_post_without_csrf_is_still_refused_through_the_edge(
    shop_edge: Process,
) -> None:
    set_mode(shop_edge, "legacy")
    answer = httpx.post(
        shop_edge.url + MUSKIE + "buy/",
        data={"quantity": "1", "email": "x@example.com"},
        headers={"Origin": shop_edge.url},
    )
    assert answer.status_code == 403


@dataclass
class Sample:
    started: float
    status: int
    origin: str


def test_a_live_flip_under_load_drops_nothing_and_moves_new_requests(
    shop_edge: Process,
) -> None:
    # given visitors opening the Muskie page through the edge, in legacy mode (in
    # strangler mode the edge serves it from its static origin, a stand-in site)
    set_mode(shop_edge, "legacy")
    samples: list[Sample] = []
    failures: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def visitor() -> None:
        with httpx.Client(base_url=shop_edge.url, timeout=10) as client:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    answer = client.get(MUSKIE)
                except httpx.HTTPError as error:
                    with lock:
                        failures.append(repr(error))
                    continue
                served = answer.headers.get("x-edge-origin", "?")
                ok = answer.status_code == 200 and (
                    "Muskie Casting Rod" in answer.text
                    if served == "shop"
                    else answer.content == MUSKIE_PAGE
                )
                with lock:
                    samples.append(Sample(started, answer.status_code, served))
                    if not ok:
                        failures.append(
                            f"{answer.status_code} {served} {answer.text[:80]}"
                        )

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 60
        while len(samples) < count:
            assert time.monotonic() < deadline, f"only {len(samples)} requests"
            time.sleep(0.01)

    threads = [threading.Thread(target=visitor) for _ in range(8)]
    for thread in threads:
        thread.start()
    try:
        wait_for(100)
        # when the edge flips to strangler, then back to legacy, under load
        set_mode(shop_edge, "strangler")
        strangler_from = time.monotonic()
        wait_for(len(samples) + 150)
        legacy_asked = time.monotonic()
        set_mode(shop_edge, "legacy")
        legacy_from = time.monotonic()
        wait_for(len(samples) + 150)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    # then no request failed
    assert not failures, failures[:5]
    assert len(samples) >= 400
    # and each request started once every worker had switched went to the new origin
    during = [s for s in samples if strangler_from <= s.started < legacy_asked]
    after = [s for s in samples if s.started >= legacy_from]
    assert during
    assert after
    assert {s.origin for s in during} == {"muskie-site"}
    assert {s.origin for s in after} == {"shop"}
