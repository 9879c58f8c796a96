"""Placing a Muskie purchase through the running stack, with a trace id we chose.

We send a fresh W3C `traceparent` with the buy-now POST, so we know the trace id
before anything answers, then read the trace back from the span store.

- legacy: POST buy now to the edge in legacy mode (or straight to the shop when no
  edge runs); the shop answers after the warehouse did, 303 to /orders/<number>/.
- strangler: the edge in strangler mode, the same POST through it; the orders
  service answers 303 to /shop/rods/muskie-casting-rod/orders/<id>/?token=... and we
  watch /api/orders/<id>/?token=... until the order is fulfilled.

The edge's mode is switched through its admin API (`/_edge/mode`, Bearer
EDGE_ADMIN_TOKEN) on the edge's admin listener (EDGE_ADMIN_URL, loopback);
`edge_mode_get` first, so the caller can put the mode back afterwards.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from observability.model import Trace

MUSKIE_PATH = "/shop/rods/muskie-casting-rod/"
LEGACY_ORDER = re.compile(r"/orders/(?P<number>[A-Z0-9-]+)/$")
STRANGLER_ORDER = re.compile(re.escape(MUSKIE_PATH) + r"orders/(?P<id>[^/?]+)/$")
FINAL_STATUSES = {"fulfilled", "failed", "rejected", "cancelled"}
# Which origin the edge sends the Muskie pages to in each path (X-Edge-Origin).
# Who serves the Muskie page: in strangler mode the edge itself, from the sale's
# static minisite (its form has no CSRF token: the browser's Origin vouches for it).
EDGE_ORIGINS = {"legacy": "shop", "strangler": "muskie-site"}
# How long an edge worker may take to follow a mode change (it polls every 0.5 s).
MODE_FOLLOW_SECONDS = 5.0
# The orders service's session cookie: it remembers the orders a browser placed.
ORDERS_SESSION_COOKIE = "orders_sessionid"


class StackUnavailable(RuntimeError):
    """A process the purchase needs is not running, or answered unexpectedly."""


@dataclass(frozen=True)
class Traceparent:
    trace_id: str
    span_id: str

    @classmethod
    def new(cls) -> Traceparent:
        return cls(secrets.token_hex(16), secrets.token_hex(8))

    @property
    def header(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-01"


@dataclass(frozen=True)
class Purchase:
    path: str  # "legacy" or "strangler"
    base_url: str
    traceparent: Traceparent
    status_code: int
    order_url: str
    final_status: str

    @property
    def trace_id(self) -> str:
        return self.traceparent.trace_id


def url_answers(url: str, *, timeout: float = 1.0) -> bool:
    """True when an HTTP server answers at `url`, whatever the status."""
    try:
        httpx.get(url, timeout=timeout)
    except httpx.HTTPError:
        return False
    return True


def _form_fields(page: str) -> dict[str, str]:
    """The buy-now form's CSRF token, when the page has one (the static minisite's
    form has none)."""
    if 'class="buy-form' not in page:
        raise StackUnavailable("the product page has no buy-now form")
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    return {"csrfmiddlewaretoken": match.group(1)} if match else {}


def _product_page(
    client: httpx.Client, base_url: str, expect_origin: str | None
) -> httpx.Response:
    """The Muskie page; through an edge, from `expect_origin` once the edge worker
    on this connection follows the mode just set (the POST reuses the connection)."""
    deadline = time.monotonic() + MODE_FOLLOW_SECONDS
    while True:
        page = client.get(MUSKIE_PATH)
        origin = page.headers.get("x-edge-origin")
        if expect_origin is None or origin in (None, expect_origin):
            break
        if time.monotonic() > deadline:
            raise StackUnavailable(
                f"the edge at {base_url} still sends {MUSKIE_PATH} to {origin}, "
                f"not {expect_origin}, {MODE_FOLLOW_SECONDS:.0f}s after the switch"
            )
        time.sleep(0.1)
    if page.status_code != 200:
        raise StackUnavailable(
            f"GET {base_url}{MUSKIE_PATH} answered {page.status_code}"
        )
    return page


def _buy(
    client: httpx.Client,
    base_url: str,
    traceparent: Traceparent,
    *,
    expect_origin: str | None = None,
) -> httpx.Response:
    try:
        page = _product_page(client, base_url, expect_origin)
        return client.post(
            MUSKIE_PATH + "buy/",
            data={
                **_form_fields(page.text),
                "quantity": "1",
                "email": "traces@example.com",
            },
            # What a browser sends with a form: where it comes from.
            headers={
                "Origin": base_url.rstrip("/"),
                "Referer": base_url + MUSKIE_PATH,
                "traceparent": traceparent.header,
            },
        )
    except httpx.HTTPError as error:
        raise StackUnavailable(f"{base_url} did not answer: {error}") from None


def _refused(answer: httpx.Response) -> StackUnavailable:
    return StackUnavailable(
        f"buy now answered {answer.status_code}, not 303 "
        f"(sold out? warehouse at capacity? X-Trace-Id "
        f"{answer.headers.get('X-Trace-Id', '-')})"
    )


def purchase_legacy(
    base_url: str, *, timeout: float = 30.0, through_edge: bool = False
) -> Purchase:
    """Buy one Muskie rod the monolith's way; it is fulfilled when the shop answers."""
    traceparent = Traceparent.new()
    expect = EDGE_ORIGINS["legacy"] if through_edge else None
    with httpx.Client(base_url=base_url, timeout=timeout) as client:
        answer = _buy(client, base_url, traceparent, expect_origin=expect)
    location = answer.headers.get("location", "")
    if answer.status_code != 303 or not LEGACY_ORDER.search(urlsplit(location).path):
        raise _refused(answer)
    return Purchase(
        "legacy", base_url, traceparent, answer.status_code, location, "fulfilled"
    )


def _edge_admin(
    admin_url: str, token: str, method: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    try:
        answer = httpx.request(
            method,
            admin_url.rstrip("/") + "/_edge/mode",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10.0,
        )
    except httpx.HTTPError as error:
        raise StackUnavailable(
            f"the edge's admin listener at {admin_url} did not answer: {error}"
        ) from None
    if answer.status_code == 401:
        raise StackUnavailable(
            f"the edge at {admin_url} refused the admin token: set EDGE_ADMIN_TOKEN "
            "to the edge's (`make demo` keeps it in .data/secrets.env)"
        )
    if answer.status_code != 200:
        raise StackUnavailable(
            f"{method} {admin_url}/_edge/mode answered {answer.status_code}: "
            f"{answer.text[:200]}"
        )
    return dict(answer.json())


def edge_mode_get(admin_url: str, *, token: str) -> dict[str, Any]:
    """The mode in force: {"mode", "percent", "version"}."""
    return _edge_admin(admin_url, token, "GET")


def edge_mode_set(
    admin_url: str, mode: str, *, token: str, percent: int | None = None
) -> dict[str, Any]:
    """Switch the edge's mode (every worker follows within its poll interval)."""
    body: dict[str, Any] = {"mode": mode}
    if mode == "canary":
        body["percent"] = percent or 0
    return _edge_admin(admin_url, token, "POST", body)


def purchase_strangler(
    edge_url: str, orders_url: str, *, timeout: float = 60.0, poll: float = 0.2
) -> Purchase:
    """Buy one Muskie rod through the edge in strangler mode; wait until fulfilled.

    The orders service answers 303 to the order's page and remembers the order in
    its session cookie; that cookie (or a `?token=` on the page's URL) lets us read
    the order's status from the orders service's JSON API.
    """
    traceparent = Traceparent.new()
    with httpx.Client(base_url=edge_url, timeout=30.0) as client:
        answer = _buy(
            client, edge_url, traceparent, expect_origin=EDGE_ORIGINS["strangler"]
        )
        session = client.cookies.get(ORDERS_SESSION_COOKIE)
    location = answer.headers.get("location", "")
    found = STRANGLER_ORDER.search(urlsplit(location).path)
    token = parse_qs(urlsplit(location).query).get("token", [""])[0]
    if answer.status_code != 303 or not found or not (token or session):
        raise StackUnavailable(
            f"the strangler path answered {answer.status_code} "
            f"{location or '(no Location)'}: not 303 to "
            f"{MUSKIE_PATH}orders/<id>/ with the orders session. Is the edge in "
            "strangler mode?"
        )
    status_url = f"{orders_url.rstrip('/')}/api/orders/{found['id']}/"
    params = {"token": token} if token else {}
    cookies = {} if token else {ORDERS_SESSION_COOKIE: str(session)}
    deadline = time.monotonic() + timeout
    status = ""
    with httpx.Client(timeout=10.0, cookies=cookies) as client:
        while time.monotonic() < deadline:
            try:
                reply = client.get(status_url, params=params)
            except httpx.HTTPError as error:
                raise StackUnavailable(
                    f"{status_url} did not answer: {error}"
                ) from None
            if reply.status_code != 200:
                raise StackUnavailable(f"{status_url} answered {reply.status_code}")
            status = str(reply.json().get("status", ""))
            if status in FINAL_STATUSES:
                break
            time.sleep(poll)
    if status != "fulfilled":
        raise StackUnavailable(
            f"order {found['id']} is {status or 'unknown'} after {timeout:.0f}s, "
            "not fulfilled: is the fulfillment worker running?"
        )
    return Purchase("strangler", edge_url, traceparent, 303, location, status)


def purchase_trace_complete(trace: Trace, purchase: Purchase) -> bool:
    """Every span of the purchase is in: nothing is missing but the parents that
    sent no span (our traceparent, an untraced proxy's), the warehouse answered, and
    on the strangler path the orders worker applied the fulfilled event."""
    sent = {purchase.traceparent.span_id, trace.root.parent_id} - {""}
    if not trace.missing_parents() <= sent or trace.fulfilled_ns is None:
        return False
    return purchase.path != "strangler" or trace.completion is not None
