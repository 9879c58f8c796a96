"""The sale's customers, as Locust users. Everything goes through the edge.

- `Browser` (FastHttpUser): home, categories, product pages (mostly the Tourney rod),
  search; the odd look at the Muskie rod. The Tourney page is the request the run
  watches: a customer who has nothing to do with the sale.
- `TourneyBuyer` (FastHttpUser): opens the Tourney rod and buys it through the legacy
  shop (in both modes: the edge never routes it elsewhere).
- `MuskieBuyer` (HttpUser): a stream of flash-sale buyers. Each opens the Muskie page,
  presses Buy now, then follows the order until it is fulfilled or failed: by
  websocket or by polling the status API (strangler), or via the confirmation the
  legacy shop answers only once its warehouse call is done. A refused attempt
  (503 busy, 429, 504, an error) is tried again on a fresh page after Retry-After, up
  to `max_attempts`; a 409 sold out ends it. HttpUser (requests), not FastHttpUser,
  because each buyer connects from a loopback address of its own (see identity.py)
  and only requests' connection pools can bind one.

The purchase runs in a greenlet of its own: when the sale fades and Locust stops a
buyer, a purchase already under way still finishes and is recorded.
"""

from __future__ import annotations

import json
import random
import socket
import time
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

import gevent
import websocket
from gevent.pool import Group
from locust import FastHttpUser, HttpUser, between, task
from locust.clients import HttpSession
from requests.adapters import HTTPAdapter

from loadtest import identity
from loadtest.config import (
    MUSKIE_BUY,
    MUSKIE_PAGE,
    TOURNEY_BUY,
    TOURNEY_PAGE,
    LoadOptions,
)
from loadtest.journal import FINAL, Attempt, Journal
from loadtest.pages import buy_form, order_link

SOLD_OUT = frozenset({"sold_out", "sold_out_page"})
SOLD_OUT_PAUSE = (5.0, 10.0)
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
CATEGORIES = ("rods", "reels", "hard-baits", "soft-baits", "swimbaits", "waders")
PRODUCTS = (
    "/shop/rods/trout-spinning-rod/",
    "/shop/rods/surf-casting-rod/",
    "/shop/reels/baitcasting-reel/",
    "/shop/reels/spinning-reel/",
    "/shop/hard-baits/topwater-popper/",
    "/shop/soft-baits/stick-worm/",
    "/shop/swimbaits/jointed-glide-bait/",
    "/shop/waders/breathable-chest-waders/",
)
SEARCHES = ("crankbait", "rod", "worm", "waders", "reel", "popper")


class Sale:
    """What the users share in one Locust process: the options and the journal."""

    options: ClassVar[LoadOptions | None] = None
    # Set by the shape each second: warmup, baseline, ramp, hold, fade, done.
    phase: ClassVar[str] = "warmup"
    journal: ClassVar[Journal] = Journal()
    purchases: ClassVar[Group] = Group()

    @classmethod
    def configure(cls, options: LoadOptions, journal: Journal) -> None:
        cls.options = options
        cls.journal = journal

    @classmethod
    def opts(cls) -> LoadOptions:
        if cls.options is None:
            # `locust -f loadtest/locustfile.py` (make sale-ui): the defaults.
            cls.options = LoadOptions(
                host="", mode="ui", run_tag="ui", out_dir="", closed_loop=True
            )
        return cls.options


class Browser(FastHttpUser):
    """Someone looking around the shop, not buying: the Tourney rod most of all."""

    wait_time = between(0.5, 2.0)
    fixed_count = 40

    @task(6)
    def tourney(self) -> None:
        # Not "tourney page": the watcher's fixed-rate fetches are the ones timed.
        self.client.get(TOURNEY_PAGE, name="browse: tourney page")

    @task(2)
    def home(self) -> None:
        self.client.get("/shop/", name="browse: home")

    @task(2)
    def category(self) -> None:
        self.client.get(f"/shop/{random.choice(CATEGORIES)}/", name="browse: category")

    @task(3)
    def product(self) -> None:
        self.client.get(random.choice(PRODUCTS), name="browse: product")

    @task(1)
    def search(self) -> None:
        query = urlencode({"q": random.choice(SEARCHES)})
        self.client.get(f"/search/?{query}", name="browse: search")

    @task(1)
    def muskie(self) -> None:
        self.client.get(MUSKIE_PAGE, name="browse: muskie page")


class TourneyBuyer(FastHttpUser):
    """An everyday customer buying the Tourney rod through the legacy shop."""

    wait_time = between(3.0, 6.0)
    fixed_count = 3

    @task
    def buy(self) -> None:
        if Sale.phase in {"warmup", "baseline"}:
            return  # the baseline is browsers only: these customers come later
        # Annotated: gevent's stubs make a Greenlet invariant in its result.
        purchase: gevent.Greenlet[..., object] = gevent.spawn(self._purchase)
        Sale.purchases.add(purchase)
        purchase.join()

    def _purchase(self) -> None:
        opts = Sale.opts()
        buyer = identity.next_buyer()
        record = Attempt(
            kind="tourney",
            buyer=buyer,
            attempt=1,
            email=identity.email("t", buyer, 1, opts.run_tag),
            started=time.time(),
        )
        page = self.client.get(TOURNEY_PAGE, name="tourney buyer: page")
        form = buy_form(page.text or "") if page.status_code == 200 else None
        if form is None:
            record.outcome = "page_error"
            record.status = page.status_code or 0
            Sale.journal.attempt(record)
            return
        body = urlencode(
            {
                "csrfmiddlewaretoken": form.csrf_token or "",
                "quantity": 1,
                "email": record.email,
            }
        )
        started = time.perf_counter()
        with self.client.post(
            TOURNEY_BUY,
            data=body,
            headers=FORM,
            name="tourney buy",
            allow_redirects=False,
            catch_response=True,
        ) as response:
            record.latency_ms = (time.perf_counter() - started) * 1000
            record.status = response.status_code or 0
            link = order_link(response.headers.get("Location", "") or "")
            if response.status_code == 303 and link is not None:
                record.outcome = "accepted"
                record.order_number = link.number
                response.success()
            else:
                record.outcome = "rejected"
                record.reason = str(response.status_code)
                response.failure(f"tourney buy answered {response.status_code}")
        Sale.journal.attempt(record)
        if record.outcome == "accepted" and link is not None:
            self.client.get(link.path, name="tourney confirmation")


class _SourceAddressAdapter(HTTPAdapter):
    """requests' adapter whose connections leave from one given address."""

    def __init__(self, address: str) -> None:
        self._address = address
        super().__init__(pool_connections=1, pool_maxsize=2)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self._address, 0)
        super().init_poolmanager(*args, **kwargs)


class MuskieBuyer(HttpUser):
    """Flash-sale buyers, one after another: each a new person (session, address)."""

    wait_time = between(0.5, 2.0)
    weight = 1

    @task
    def buy(self) -> None:
        purchase: gevent.Greenlet[..., object] = gevent.spawn(muskie_purchase, self)
        Sale.purchases.add(purchase)
        purchase.join()
        if purchase.value in SOLD_OUT:
            # Whoever finds it sold out wanders off; the next buyer comes later.
            gevent.sleep(random.uniform(*SOLD_OUT_PAUSE))


def _buyer_session(user: HttpUser, address: str | None) -> HttpSession:
    session = HttpSession(
        base_url=user.host, request_event=user.environment.events.request, user=user
    )
    if address is not None:
        adapter = _SourceAddressAdapter(address)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
    session.headers["User-Agent"] = "lee.fishing sale buyer (locust)"
    return session


def muskie_purchase(user: HttpUser) -> str:
    """One buyer's purchase, up to max_attempts tries; returns the last outcome."""
    opts = Sale.opts()
    buyer = identity.next_buyer()
    address = identity.source_address(buyer) if opts.source_addresses else None
    session = _buyer_session(user, address)
    try:
        outcome = ""
        for attempt in range(1, opts.max_attempts + 1):
            record = _muskie_attempt(session, opts, buyer, attempt)
            Sale.journal.attempt(record)
            outcome = record.outcome
            if outcome == "accepted":
                _follow(user, session, address, record, opts)
            if outcome != "rejected":
                break
            # A refused customer reloads the page and presses again, a moment later.
            wait = record.extra.get("retry_after") or random.uniform(1.0, 2.0)
            gevent.sleep(min(float(wait), 5.0))
        return outcome
    finally:
        session.close()


def _muskie_attempt(
    session: HttpSession, opts: LoadOptions, buyer: int, attempt: int
) -> Attempt:
    record = Attempt(
        kind="muskie",
        buyer=buyer,
        attempt=attempt,
        email=identity.email("m", buyer, attempt, opts.run_tag),
        started=time.time(),
    )
    page = session.get(MUSKIE_PAGE, name="muskie page", timeout=opts.request_timeout)
    form = buy_form(page.text or "") if page.status_code == 200 else None
    if form is None:
        record.outcome = "sold_out_page" if page.status_code == 200 else "page_error"
        record.status = page.status_code or 0
        return record
    data = {"quantity": "1", "email": record.email}
    if form.csrf_token is not None:
        data["csrfmiddlewaretoken"] = form.csrf_token
    if form.idempotency_key is not None:
        data["idempotency_key"] = form.idempotency_key
    record.started = time.time()
    started = time.perf_counter()
    with session.post(
        MUSKIE_BUY,
        data=data,
        # As a browser: the static minisite's form is vouched for by its Origin.
        headers={"Origin": (session.base_url or "").rstrip("/")},
        name="muskie buy",
        allow_redirects=False,
        catch_response=True,
        timeout=opts.request_timeout,
    ) as response:
        record.latency_ms = (time.perf_counter() - started) * 1000
        record.status = response.status_code or 0
        link = order_link(response.headers.get("Location", ""))
        if response.status_code == 303 and link is not None:
            record.outcome = "accepted"
            record.order_number, record.order_id = link.number, link.order_id
            record.extra["path"] = link.path
            response.success()
        elif response.status_code == 409:
            record.outcome = "sold_out"
            response.success()
        else:
            record.outcome = "rejected"
            record.reason = str(response.status_code or "transport error")
            retry_after = response.headers.get("Retry-After", "")
            if retry_after.isdigit():
                record.extra["retry_after"] = int(retry_after)
            response.failure(f"muskie buy answered {record.reason}")
    return record


def _follow(
    user: HttpUser,
    session: HttpSession,
    address: str | None,
    record: Attempt,
    opts: LoadOptions,
) -> None:
    """Until the order is fulfilled or failed (or follow_timeout passes)."""
    started = time.monotonic()
    path = str(record.extra.get("path", ""))
    if record.order_id is None:
        # The legacy shop confirms only once the warehouse has packed the order.
        page = session.get(
            path, name="muskie confirmation", timeout=opts.request_timeout
        )
        record.followed_by = "confirmation"
        record.final_status = "fulfilled" if page.status_code == 200 else "error"
    elif random.random() < opts.websocket_share:
        record.followed_by = "websocket"
        _follow_websocket(user, session, address, record, opts)
    else:
        record.followed_by = "poll"
        _follow_poll(session, record, opts)
    record.follow_seconds = round(time.monotonic() - started, 3)


def _follow_poll(session: HttpSession, record: Attempt, opts: LoadOptions) -> None:
    deadline = time.monotonic() + opts.follow_timeout
    url = f"/api/orders/{record.order_id}/"
    while time.monotonic() < deadline:
        response = session.get(
            url, name="muskie status (poll)", timeout=opts.request_timeout
        )
        if response.status_code == 200:
            body = response.json()
            record.order_number = body.get("number") or record.order_number
            if body.get("status") in FINAL:
                record.final_status = body["status"]
                return
        gevent.sleep(opts.poll_seconds * random.uniform(0.8, 1.2))
    record.final_status = "timeout"


def _follow_websocket(
    user: HttpUser,
    session: HttpSession,
    address: str | None,
    record: Attempt,
    opts: LoadOptions,
) -> None:
    base = urlsplit(user.host or "")
    host, port = base.hostname or "127.0.0.1", base.port or 80
    started_wall, started = time.time(), time.perf_counter()
    cookies = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    error: Exception | None = None
    ws = websocket.WebSocket()
    try:
        sock = socket.create_connection(
            (host, port),
            timeout=opts.request_timeout,
            source_address=(address, 0) if address else None,
        )
        ws.connect(
            f"ws://{host}:{port}/ws/orders/{record.order_id}/",
            socket=sock,
            cookie=cookies,
            origin=f"{base.scheme}://{base.netloc}",
        )
        deadline = time.monotonic() + opts.follow_timeout
        while time.monotonic() < deadline:
            ws.settimeout(max(0.1, deadline - time.monotonic()))
            message = json.loads(ws.recv())
            state = message.get("state") or {}
            record.order_number = state.get("number") or record.order_number
            if state.get("status") in FINAL:
                record.final_status = state["status"]
                break
        else:
            record.final_status = "timeout"
    except (OSError, websocket.WebSocketException, ValueError) as exc:
        error = exc
        record.final_status = "timeout" if isinstance(exc, TimeoutError) else "error"
        record.reason = f"websocket: {type(exc).__name__}"
    finally:
        ws.close()
    user.environment.events.request.fire(
        request_type="WS",
        name="muskie follow (websocket)",
        response_time=(time.perf_counter() - started) * 1000,
        response_length=0,
        response=None,
        context={},
        exception=error,
        start_time=started_wall,
        url=f"/ws/orders/{record.order_id}/",
    )
