"""One open-loop flash-sale buyer (asyncio, aiohttp): arrives when due, buys one rod,
follows the order, leaves.

Each buyer is a new person: a session (cookies) of its own, connecting from a
loopback address of its own (identity.py), an Idempotency-Key and a client secret
of its own. It opens the Muskie page, then buys:

- strangler: through the orders JSON API, `POST /api/orders/` with its
  Idempotency-Key (the same key, and so the same body, on every retry: a retry can
  never order twice); `202` accepted, `409 sold_out` leaves; `429`, `503` or a `409`
  saying the key is still in progress are tried again after `Retry-After`. It
  follows the order by websocket (most buyers) or by polling its status no faster
  than once every `poll_seconds`.
- legacy: through the shop's buy-now form (the legacy shop has no JSON API); a `303`
  accepted, `409` or a page without the form sold out; `429`/`503` tried again on
  a fresh page after `Retry-After`; a `504` (the edge gave up on the shop) ends it,
  as the buyer cannot know whether the order went through. It follows the
  confirmation the shop shows once its warehouse call is done.

A timeout, a dropped connection or a `502`/`504` ends the visit in both modes, as a
customer would give up: trying again at once would only multiply the load on a
server already behind (a retry storm), and the run must not make its own overload.

At most `max_attempts` tries. Every attempt is an `Attempt` in the journal, with the
buyer's due time and the answer's latency counted from it.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDict

from loadtest import identity
from loadtest.arrivals import latency_from_due_ms
from loadtest.config import (
    MUSKIE_BUY,
    MUSKIE_PAGE,
    MUSKIE_SKU,
    ORDERS_API,
    TRACE_ID_HEADER,
    LoadOptions,
)
from loadtest.journal import FINAL, Attempt, Journal
from loadtest.pages import buy_form, order_link

SOLD_OUT_CODES = frozenset({"sold_out", "sale_not_open"})
# Answers that say "not now, nothing done": tried again after Retry-After.
RETRY = frozenset({429, 503})


@dataclass
class Answer:
    status: int
    # Case-insensitive, as HTTP's names are: uvicorn and the edge send them lowercase.
    headers: Mapping[str, str]
    text: str
    sent: float
    answered: float

    @property
    def ms(self) -> float:
        return (self.answered - self.sent) * 1000.0

    def json(self) -> dict[str, Any]:
        try:
            body = json.loads(self.text)
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}


class Buyer:
    """One buyer's visit; `run()` returns its last outcome."""

    def __init__(
        self,
        *,
        options: LoadOptions,
        journal: Journal,
        number: int,
        due: float,
        on_accepted: Callable[[], None] = lambda: None,
    ) -> None:
        self.options = options
        self.journal = journal
        self.number = number
        self.due = due
        self.on_accepted = on_accepted
        self.address = (
            identity.source_address(number) if options.source_addresses else None
        )
        self.email = identity.email("m", number, 1, options.run_tag)
        self.key = str(uuid.uuid4())
        self.secret = uuid.uuid4().hex
        self.session: aiohttp.ClientSession | None = None

    async def run(self) -> str:
        connector = aiohttp.TCPConnector(
            limit=4, local_addr=(self.address, 0) if self.address else None
        )
        timeout = aiohttp.ClientTimeout(total=self.options.request_timeout)
        async with aiohttp.ClientSession(
            base_url=self.options.host,
            connector=connector,
            timeout=timeout,
            # The shop's CSRF and session cookies, though the host is an address.
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            headers={"User-Agent": "lee.fishing sale buyer (open loop)"},
        ) as session:
            self.session = session
            outcome = ""
            for attempt in range(1, self.options.max_attempts + 1):
                record, retry_after = await self._attempt(attempt)
                outcome = record.outcome
                if outcome == "accepted":
                    self.on_accepted()
                    await self._follow(record)
                self.journal.attempt(record)
                if retry_after is None:
                    break
                await asyncio.sleep(retry_after)
            return outcome

    # --- one request ---------------------------------------------------------------

    async def _request(
        self, method: str, path: str, name: str, **kwargs: Any
    ) -> Answer:
        assert self.session is not None
        sent = time.time()
        try:
            async with self.session.request(
                method, path, allow_redirects=False, **kwargs
            ) as response:
                text = await response.text()
                answer = Answer(
                    response.status,
                    CIMultiDict(response.headers),
                    text,
                    sent,
                    time.time(),
                )
        except (aiohttp.ClientError, TimeoutError):
            answer = Answer(0, CIMultiDict(), "", sent, time.time())
        self.journal.sample(
            sent,
            name,
            answer.status,
            answer.ms,
            200 <= answer.status < 400,
            answer.headers.get(TRACE_ID_HEADER, ""),
        )
        return answer

    def _record(self, attempt: int) -> Attempt:
        email = (
            self.email
            if self.options.mode == "strangler"
            else identity.email("m", self.number, attempt, self.options.run_tag)
        )
        return Attempt(
            kind="muskie",
            buyer=self.number,
            attempt=attempt,
            email=email,
            started=time.time(),
            due=self.due,
        )

    def _answered(self, record: Attempt, answer: Answer) -> None:
        record.started = answer.sent
        record.latency_ms = round(answer.ms, 2)
        record.status = answer.status
        record.from_due_ms = round(
            latency_from_due_ms(due=self.due, answered=answer.answered), 2
        )

    def _retry_after(self, answer: Answer) -> float:
        raw = answer.headers.get("Retry-After", "")
        wait = float(raw) if raw.isdigit() else random.uniform(1.0, 2.0)
        return min(wait, self.options.retry_after_max)

    # --- an attempt ----------------------------------------------------------------

    async def _attempt(self, attempt: int) -> tuple[Attempt, float | None]:
        """The attempt's record, and how long to wait before the next (None: stop)."""
        record = self._record(attempt)
        page = await self._request("GET", MUSKIE_PAGE, "muskie page")
        if self.options.mode == "strangler":
            if page.status != 200:
                record.outcome, record.status = "page_error", page.status
                self._answered(record, page)
                return record, self._again(attempt, page, RETRY)
            return await self._buy_json(record, attempt)
        form = buy_form(page.text) if page.status == 200 else None
        if form is None:
            sold_out = page.status == 200
            record.outcome = "sold_out_page" if sold_out else "page_error"
            record.status = page.status
            self._answered(record, page)
            return record, None if sold_out else self._again(attempt, page, RETRY)
        return await self._buy_form(record, attempt, form.csrf_token)

    def _again(
        self, attempt: int, answer: Answer, retry: frozenset[int]
    ) -> float | None:
        if attempt >= self.options.max_attempts or answer.status not in retry:
            return None
        return self._retry_after(answer)

    async def _buy_json(
        self, record: Attempt, attempt: int
    ) -> tuple[Attempt, float | None]:
        answer = await self._request(
            "POST",
            ORDERS_API,
            "muskie buy",
            json={"sku": MUSKIE_SKU, "quantity": 1, "email": record.email},
            headers={"Idempotency-Key": self.key, "Orders-Client-Secret": self.secret},
        )
        self._answered(record, answer)
        body = answer.json()
        if answer.status == 202 and body.get("id"):
            record.outcome = "accepted"
            record.order_id, record.order_number = str(body["id"]), body.get("number")
            record.extra["status_url"] = body.get("status_url", "")
            record.extra["ws_url"] = body.get("ws_url", "")
            return record, None
        if answer.status == 409 and body.get("error") in SOLD_OUT_CODES:
            record.outcome = "sold_out"
            return record, None
        record.outcome = "rejected"
        record.reason = str(body.get("error") or answer.status or "transport error")
        # A 409 for a key still in progress is one too: the first try may yet land.
        in_progress = body.get("error") == "idempotency_in_progress"
        retry = RETRY | {409} if in_progress else RETRY
        return record, self._again(attempt, answer, retry)

    async def _buy_form(
        self, record: Attempt, attempt: int, csrf: str | None
    ) -> tuple[Attempt, float | None]:
        # The legacy page's form carries a CSRF token; the sale's static minisite has
        # none, and its form is vouched for by the page's Origin, as a browser sends.
        data = {"quantity": "1", "email": record.email}
        if csrf is not None:
            data["csrfmiddlewaretoken"] = csrf
        answer = await self._request(
            "POST",
            MUSKIE_BUY,
            "muskie buy",
            data=data,
            headers={"Origin": self.options.host.rstrip("/")},
        )
        self._answered(record, answer)
        link = order_link(answer.headers.get("Location", ""))
        if answer.status == 303 and link is not None:
            record.outcome = "accepted"
            record.order_number, record.order_id = link.number, link.order_id
            record.extra["path"] = link.path
            return record, None
        if answer.status == 409:
            record.outcome = "sold_out"
            return record, None
        record.outcome = "rejected"
        record.reason = str(answer.status or "transport error")
        return record, self._again(attempt, answer, RETRY)

    # --- following the order -------------------------------------------------------

    async def _follow(self, record: Attempt) -> None:
        started = time.monotonic()
        if record.order_id is None:
            # The legacy shop confirms only once the warehouse has packed the order.
            path = str(record.extra.get("path", ""))
            page = await self._request("GET", path, "muskie confirmation")
            record.followed_by = "confirmation"
            record.final_status = "fulfilled" if page.status == 200 else "error"
        elif random.random() < self.options.websocket_share:
            record.followed_by = "websocket"
            await self._follow_websocket(record)
        else:
            record.followed_by = "poll"
            await self._follow_poll(record)
        record.follow_seconds = round(time.monotonic() - started, 3)

    async def _follow_poll(self, record: Attempt) -> None:
        deadline = time.monotonic() + self.options.follow_timeout
        url = str(record.extra.get("status_url") or f"{ORDERS_API}{record.order_id}/")
        while time.monotonic() < deadline:
            asked = time.monotonic()
            answer = await self._request("GET", url, "muskie status (poll)")
            status = answer.json().get("status") if answer.status == 200 else None
            if status in FINAL:
                record.final_status = str(status)
                return
            # Never faster than once every poll_seconds, from one ask to the next.
            await asyncio.sleep(
                max(0.0, self.options.poll_seconds - (time.monotonic() - asked))
            )
        record.final_status = "timeout"

    async def _follow_websocket(self, record: Attempt) -> None:
        assert self.session is not None
        path = str(record.extra.get("ws_url") or f"/ws/orders/{record.order_id}/")
        sent = time.time()
        error = ""
        try:
            async with self.session.ws_connect(
                path, origin=self.options.host, heartbeat=None
            ) as ws:
                deadline = time.monotonic() + self.options.follow_timeout
                record.final_status = "timeout"
                while time.monotonic() < deadline:
                    message = await ws.receive(timeout=deadline - time.monotonic())
                    if message.type != aiohttp.WSMsgType.TEXT:
                        record.final_status = "error"
                        error = f"websocket: {message.type.name}"
                        break
                    state = json.loads(message.data).get("state") or {}
                    if state.get("status") in FINAL:
                        record.final_status = str(state["status"])
                        break
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            timed_out = isinstance(exc, TimeoutError)
            record.final_status = "timeout" if timed_out else "error"
            error = f"websocket: {type(exc).__name__}"
        if error:
            record.reason = error
        self.journal.sample(
            sent,
            "muskie follow (websocket)",
            101,
            (time.time() - sent) * 1000,
            not error,
        )
