"""The ASGI fast lane of `POST /api/orders/`: refusals answered on the event loop.

Most answers of a flash sale are refusals (sold out, rate limited, the replay of a
stored refusal), and each is decided by the one Redis call of the accept
(admission/scripts.py ACCEPT) alone. Through Django such an answer still pays the
thread pool, the handler and its middleware: about as much CPU as the floor's whole
request (bench.orders). Here, ahead of Django, the request's body is checked by the
same rules (ordering/order_input.py, the Idempotency-Key's and client secret's),
the script runs on the event loop (redis.asyncio), and:

- a refusal is answered at once, the same status, body and headers as Django's;
- anything else (admitted units, a counter to rebuild, a key the database holds)
  goes on to Django with the script's verdict in the ASGI scope
  (`PRE_ADMISSION_SCOPE_KEY`): the view's accept uses it instead of asking Redis
  again. Units admitted here that the view never used are given back.

The lane steps aside (Django decides, exactly as before) for anything that is not
the plain case: another path or method, a host Django would refuse, a body too big
or not valid JSON or not a valid order, a session cookie (the session decides whose
Idempotency-Keys they are), HTTPS redirects. Untraced: its refusals carry no
`X-Trace-Id` (ORDERS_FAST_LANE=false turns it off).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any

import redis.asyncio as aioredis
from django.conf import settings
from django.urls import reverse
from opentelemetry.instrumentation.utils import suppress_instrumentation
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from common.errors import ApplicationError
from common.redis_client import REDIS_FAULTS, RedisUnavailable, redis_timeouts
from common.tracing.core import ASGIApp
from orders_api.admission import accept as redis_accept
from orders_api.admission import scripts
from orders_api.exceptions import (
    IdempotencyInProgress,
    IdempotencyKeyReused,
    RateLimited,
    SaleNotOpen,
    SoldOut,
)
from orders_api.ordering.clients import (
    CLIENT_SECRET_HEADER,
    client_key,
    client_secret_check,
    idempotency_client,
)
from orders_api.ordering.idempotency import fingerprint_of, idempotency_key_check
from orders_api.ordering.order_input import order_input_parse
from orders_api.web import fast_accept, lane_http

logger = logging.getLogger(__name__)

PATH = "/api/orders/"
# What DRF says the view allows (its answers carry it).
ALLOW = "POST, OPTIONS"
SCOPE = "POST /api/orders/"
PRE_ADMISSION_SCOPE_KEY = "orders.pre_admission"


@dataclass
class PreAdmission:
    """The verdict of the accept's Redis call, made in the fast lane, for the view.

    `used` is set by the view's accept when it takes the verdict over (and with it
    the duty to give admitted units back if it writes nothing)."""

    slug: str
    units: int
    client: str
    key: redis_accept.KeyRef
    verdict: redis_accept.AcceptVerdict
    used: bool = False

    def matches(
        self, *, slug: str, units: int, client: str, key: redis_accept.KeyRef | None
    ) -> bool:
        return (slug, units, client, key) == (
            self.slug,
            self.units,
            self.client,
            self.key,
        )


class _StepAside(Exception):
    """Not the plain case: Django answers."""


def _constant_refused(name: str) -> Any:
    """NaN and Infinity are not JSON: DRF's parser refuses them (a 400), so here too."""
    raise ValueError(name)


def _pre_admission_input(
    scope: dict[str, Any], headers: dict[str, str], body: bytes
) -> tuple[str, int, str, redis_accept.KeyRef, str]:
    """(slug, units, rate-limit client, key, e-mail) as the view would make them,
    or _StepAside."""
    if settings.SESSION_COOKIE_NAME in headers.get("cookie", ""):
        raise _StepAside
    if not headers.get("content-type", "").startswith("application/json"):
        raise _StepAside
    if settings.SECURE_SSL_REDIRECT or not lane_http.host_allowed(headers):
        raise _StepAside
    try:
        payload = json.loads(body, parse_constant=_constant_refused)
        data = order_input_parse(payload)
        key = idempotency_key_check(headers.get("idempotency-key"))
        secret = client_secret_check(headers.get(CLIENT_SECRET_HEADER.lower()))
    except (ValueError, ApplicationError):
        raise _StepAside from None
    slug = {sku: slug for slug, sku in settings.SALE_PRODUCTS.items()}.get(data.sku)
    if slug is None:
        raise _StepAside
    meta = {"REMOTE_ADDR": (scope.get("client") or ("", 0))[0]}
    if "x-forwarded-for" in headers:
        meta["HTTP_X_FORWARDED_FOR"] = headers["x-forwarded-for"]
    request = SimpleNamespace(META=meta)
    return (
        slug,
        data.quantity,
        client_key(request),
        redis_accept.KeyRef(
            scope=SCOPE,
            client=idempotency_client(request, secret=secret),
            key=key,
            fingerprint=fingerprint_of(method="POST", path=PATH, payload=payload),
        ),
        data.email,
    )


def refusal_of(
    verdict: redis_accept.AcceptVerdict, *, key: redis_accept.KeyRef
) -> tuple[int, dict[str, Any], dict[str, str]] | None:
    """The answer to a refused accept (status, body, headers) as the view gives it,
    or None: the view decides (units admitted, the database asked)."""
    error: ApplicationError | None = None
    if verdict.code == scripts.RATE_LIMITED:
        error = RateLimited(
            "Too many orders from you at once; try again shortly.",
            retry_after=verdict.retry_after,
        )
    elif verdict.code in (scripts.SOLD_OUT, scripts.CLOSED):
        refusal = SoldOut if verdict.code == scripts.SOLD_OUT else SaleNotOpen
        error = refusal(str((verdict.body or {}).get("detail", "")))
    elif verdict.held is not None and verdict.held.state != redis_accept.ACCEPTED:
        held = verdict.held
        if held.fingerprint != key.fingerprint:
            error = IdempotencyKeyReused(
                "This Idempotency-Key was used with another request body."
            )
        elif held.state == redis_accept.PENDING:
            error = IdempotencyInProgress(
                "A request with this Idempotency-Key is still being processed."
            )
        else:
            return held.status, held.body, {"Idempotent-Replayed": "true"}
    if error is None:
        return None
    return error.status_code, error.body(), error.headers


def lane_code_warm() -> None:
    """What Django builds lazily on first use, built before the first buyer: the
    e-mail validator's regular expressions (~25 ms) and the URL resolver the 202's
    links come from (~12 ms, its modules imported). On the event loop in a rush, each
    was a stall that every request behind it waited out."""
    sku = next(iter(settings.SALE_PRODUCTS.values()))
    order_input_parse({"sku": sku, "quantity": 1, "email": "warm-up@example.com"})
    reverse("orders:order-detail", args=[uuid.UUID(int=0)])


class OrderFastLane:
    """ASGI middleware in front of Django (see the module's docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._redis: aioredis.Redis | None = None
        self._script: Any = None
        self._database = fast_accept.lane_database()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lane_http.lifespan_serve(
                receive, send, startup=self._warm, shutdown=self.close
            )
            return
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != PATH
            or not settings.ORDERS_FAST_LANE
        ):
            await self.app(scope, receive, send)
            return
        started_ns = time.time_ns()
        body, complete = await lane_http.body_read(receive)
        replay = lane_http.replaying(body, complete, receive)
        headers = lane_http.request_headers(scope)
        try:
            if not complete:
                raise _StepAside
            slug, units, client, key, email = _pre_admission_input(scope, headers, body)
        except _StepAside:
            await self.app(scope, replay, send)
            return
        try:
            verdict = await self._accept(slug=slug, units=units, client=client, key=key)
        except REDIS_FAULTS as exc:
            logger.warning("Redis unavailable: POST %s: %r", PATH, exc)
            error = RedisUnavailable()
            await lane_http.json_answer(
                send, ALLOW, error.status_code, error.body(), error.headers
            )
            return
        refusal = refusal_of(verdict, key=key)
        if refusal is not None:
            await lane_http.json_answer(send, ALLOW, *refusal)
            return
        pre = PreAdmission(
            slug=slug, units=units, client=client, key=key, verdict=verdict
        )
        if verdict.admitted and settings.ORDERS_LOOP_ACCEPT:
            accepted = await self._accept_on_loop(
                scope, headers, send, pre, email=email, started_ns=started_ns
            )
            if accepted:
                return
            # Django goes the long way, without asking Redis again.
            pre = replace(pre, verdict=replace(verdict, code=scripts.MISSING))
        try:
            await self.app({**scope, PRE_ADMISSION_SCOPE_KEY: pre}, replay, send)
        finally:
            if verdict.admitted and not pre.used:
                await self._give_back(pre)

    async def _warm(self) -> None:
        """At the server's start: the lane's Redis connection and script, and
        ORDERS_LOOP_WARM_CONNECTIONS of its PostgreSQL connections, opened before
        a sale's first buyers (each would otherwise wait for one in the rush); and
        what Django makes on first use (lane_code_warm)."""
        lane_code_warm()
        redis, _ = await self._client()
        await redis.ping()
        await redis.script_load(scripts.ACCEPT)
        await self._database.warm(settings.ORDERS_LOOP_WARM_CONNECTIONS)

    def close(self) -> None:
        """Close the lane's own database connections (an app served in-process,
        the tests'; a server's process closes them as it exits)."""
        self._database.discard()

    async def _accept_on_loop(
        self,
        scope: dict[str, Any],
        headers: dict[str, str],
        send: Any,
        pre: PreAdmission,
        *,
        email: str,
        started_ns: int,
    ) -> bool:
        """The admitted order placed and answered here (web/fast_accept.py); False
        when it must go the long way (its units given back if nothing was written).
        """
        redis, _ = await self._client()
        with lane_http.lane_span(
            scope, headers, route=fast_accept.ROUTE, started_ns=started_ns
        ) as span:
            if span.is_recording():
                # Its Redis admission was made before the span, inside its time.
                span.set_attribute("orders.admission", "fast-lane")
            try:
                body = await fast_accept.order_accept_on_loop(
                    verdict=pre.verdict,
                    slug=pre.slug,
                    quantity=pre.units,
                    email=email,
                    traceparent=headers.get("traceparent"),
                    key=pre.key,
                    redis=redis,
                    database=self._database,
                    give_back=lambda: self._give_back(pre),
                )
            except fast_accept.LongWay:
                return False
            extra = {"Location": body["status_url"]}
            await lane_http.traced_answer(send, span, ALLOW, 202, body, extra)
            await fast_accept.accept_done(redis, pre.key)
        return True

    async def _client(self) -> tuple[aioredis.Redis, Any]:
        if self._redis is None:
            # One retry, on a refused or closed connection only: redis.asyncio's
            # pool hands out a connection Redis closed (a restart) without the
            # check the sync pool makes, and its first command fails. A Redis that
            # is down refuses again at once; one that hangs times out, not retried.
            pool = aioredis.BlockingConnectionPool.from_url(
                settings.REDIS_URL,
                max_connections=64,
                timeout=10,
                retry=Retry(
                    NoBackoff(), 1, supported_errors=(aioredis.ConnectionError,)
                ),
                decode_responses=True,
                **_lane_timeouts(),
            )
            self._redis = aioredis.Redis(connection_pool=pool)
            self._script = self._redis.register_script(scripts.ACCEPT)
        return self._redis, self._script

    async def _accept(
        self, *, slug: str, units: int, client: str, key: redis_accept.KeyRef
    ) -> redis_accept.AcceptVerdict:
        _, script = await self._client()
        keys, args = redis_accept.accept_script_input(
            slug=slug, units=units, client=client, key=key
        )
        # Before the request's span (lane_span): a root call, which the sampler
        # drops; suppressed, the Redis instrumentation does not even ask it.
        with suppress_instrumentation():
            answer = await script(keys=keys, args=args)
        return redis_accept.accept_verdict(answer)

    async def _give_back(self, pre: PreAdmission) -> None:
        client, _ = await self._client()
        keys, args = redis_accept.give_back_input(
            slug=pre.slug,
            units=pre.units,
            generation=pre.verdict.generation,
            key=pre.key,
        )
        try:
            await client.eval(scripts.GIVE_BACK, len(keys), *keys, *args)
        except REDIS_FAULTS:
            logger.exception("units admitted for a request Django did not take")


# An asyncio read timeout also counts the event loop's own lag: in a rush one worker's
# loop holds hundreds of requests, and at the stack's 1 s a reply Redis sent at once
# could be read too late and answered 503 (seen under CI load: 44 of 500 buyers). The
# lane waits longer for a reply, still well inside the 5 s in which a Redis that
# never answers must be a 503 (tests/orders_api/test_redis_faults.py); connecting
# keeps the stack's timeout.
LANE_READ_TIMEOUT = 3.0


def _lane_timeouts() -> dict[str, float]:
    timeouts = redis_timeouts()
    timeouts["socket_timeout"] = max(timeouts["socket_timeout"], LANE_READ_TIMEOUT)
    return timeouts
