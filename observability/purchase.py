"""Placing a Muskie purchase through the running stack, with a trace id we chose.

We send a fresh W3C `traceparent` with the buy-now POST, so we know the trace id
before anything answers, then read the trace back from the span store.

- legacy: POST buy now to the edge in legacy mode (or straight to the shop when no
  edge runs); the shop answers after the warehouse did, 303 to /orders/<number>/.
- strangler: `manage.py edge mode strangler`, the same POST through the edge; the
  orders service answers 303 to /shop/rods/muskie-casting-rod/orders/<id>/?token=...
  and we watch /api/orders/<id>/?token=... until the order is fulfilled.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

MUSKIE_PATH = "/shop/rods/muskie-casting-rod/"
LEGACY_ORDER = re.compile(r"/orders/(?P<number>[A-Z0-9-]+)/$")
STRANGLER_ORDER = re.compile(re.escape(MUSKIE_PATH) + r"orders/(?P<id>[^/?]+)/$")
FINAL_STATUSES = {"fulfilled", "failed", "rejected", "cancelled"}


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


def _csrf_token(page: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if not match:
        raise StackUnavailable("the product page has no buy-now form (CSRF token)")
    return match.group(1)


def _buy(
    client: httpx.Client, base_url: str, traceparent: Traceparent
) -> httpx.Response:
    try:
        page = client.get(MUSKIE_PATH)
        if page.status_code != 200:
            raise StackUnavailable(
                f"GET {base_url}{MUSKIE_PATH} answered {page.status_code}"
            )
        return client.post(
            MUSKIE_PATH + "buy/",
            data={
                "csrfmiddlewaretoken": _csrf_token(page.text),
                "quantity": "1",
                "email": "traces@example.com",
            },
            headers={
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


def purchase_legacy(base_url: str, *, timeout: float = 30.0) -> Purchase:
    """Buy one Muskie rod the monolith's way; it is fulfilled when the shop answers."""
    traceparent = Traceparent.new()
    with httpx.Client(base_url=base_url, timeout=timeout) as client:
        answer = _buy(client, base_url, traceparent)
    location = answer.headers.get("location", "")
    if answer.status_code != 303 or not LEGACY_ORDER.search(urlsplit(location).path):
        raise _refused(answer)
    return Purchase(
        "legacy", base_url, traceparent, answer.status_code, location, "fulfilled"
    )


def edge_mode_set(mode: str, *, manage_py: Path, timeout: float = 30.0) -> None:
    """`python manage.py edge mode <mode>`: the edge's own switch."""
    try:
        result = subprocess.run(  # noqa: S603 - our own manage.py, fixed arguments
            [sys.executable, str(manage_py), "edge", "mode", mode],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=manage_py.parent,
        )
    except subprocess.TimeoutExpired:
        raise StackUnavailable(f"`manage.py edge mode {mode}` hung") from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise StackUnavailable(
            f"`manage.py edge mode {mode}` failed: "
            f"{detail[-1] if detail else 'exit ' + str(result.returncode)}"
        )


def purchase_strangler(
    edge_url: str, orders_url: str, *, timeout: float = 60.0, poll: float = 0.2
) -> Purchase:
    """Buy one Muskie rod through the edge in strangler mode; wait until fulfilled."""
    traceparent = Traceparent.new()
    with httpx.Client(base_url=edge_url, timeout=30.0) as client:
        answer = _buy(client, edge_url, traceparent)
    location = answer.headers.get("location", "")
    found = STRANGLER_ORDER.search(urlsplit(location).path)
    token = parse_qs(urlsplit(location).query).get("token", [""])[0]
    if answer.status_code != 303 or not found or not token:
        raise StackUnavailable(
            f"the strangler path answered {answer.status_code} "
            f"{location or '(no Location)'}: not 303 to "
            f"{MUSKIE_PATH}orders/<id>/?token=... Is the edge in strangler mode?"
        )
    status_url = f"{orders_url.rstrip('/')}/api/orders/{found['id']}/"
    deadline = time.monotonic() + timeout
    status = ""
    with httpx.Client(timeout=10.0) as client:
        while time.monotonic() < deadline:
            try:
                reply = client.get(status_url, params={"token": token})
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
