"""Idempotency-Key handling, after Stripe and the IETF httpapi draft.

A key is one client's (Stripe scopes keys to an account; here the client is a
digest of its secret, session or address: ordering/clients.py). It is stored with
a fingerprint of its request and, once done, the first response. A replay with the
same body gets that response again; the same key with another body is 422; a
request arriving while the first holds its lease (ORDERS_IDEMPOTENCY_LEASE_SECONDS)
is 409; after the lease a retry takes the claim over, and the claim is checked when
the effect commits, so a slow first attempt and its successor cannot both place an
order. Keys expire after ORDERS_IDEMPOTENCY_TTL_SECONDS (24 h) and are swept.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone

from common.errors import ApplicationError
from orders_api.exceptions import (
    IdempotencyClaimLost,
    IdempotencyInProgress,
    IdempotencyKeyInvalid,
    IdempotencyKeyMissing,
    IdempotencyKeyReused,
    Replayable,
)
from orders_api.models import IdempotencyKey

KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: dict[str, Any]


def idempotency_key_check(raw: str | None) -> str:
    """The Idempotency-Key header's value; 400 when missing or malformed."""
    if raw is None or raw == "":
        raise IdempotencyKeyMissing("This request needs an Idempotency-Key header.")
    # Structured-field strings arrive quoted in the draft's examples; accept both.
    key = raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] == '"' else raw
    if not KEY_PATTERN.fullmatch(key):
        raise IdempotencyKeyInvalid(
            "An Idempotency-Key is 1 to 255 printable ASCII characters, no spaces."
        )
    return key


def fingerprint_of(*, method: str, path: str, payload: Any) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def _lease_end(now: datetime) -> datetime:
    return now + timedelta(seconds=settings.ORDERS_IDEMPOTENCY_LEASE_SECONDS)


def _claim_new(
    *, scope: str, client: str, key: str, fingerprint: str
) -> IdempotencyKey:
    """One INSERT in autocommit: the unique constraint decides who claims."""
    now = timezone.now()
    return IdempotencyKey.objects.create(
        scope=scope,
        client=client,
        key=key,
        fingerprint=fingerprint,
        status=IdempotencyKey.Status.IN_PROGRESS,
        claim=uuid.uuid4().hex,
        lease_expires_at=_lease_end(now),
        expires_at=now + timedelta(seconds=settings.ORDERS_IDEMPOTENCY_TTL_SECONDS),
    )


def _claim_take_over(*, record: IdempotencyKey) -> bool:
    """Take an expired lease over from the attempt that held it.

    Compare-and-set on the old claim: of two retries one wins. An UPDATE waits for
    a transaction completing the key (its row lock), then finds it completed.
    """
    claim, lease_end = uuid.uuid4().hex, _lease_end(timezone.now())
    taken = IdempotencyKey.objects.filter(
        pk=record.pk, status=IdempotencyKey.Status.IN_PROGRESS, claim=record.claim
    ).update(claim=claim, lease_expires_at=lease_end)
    if taken != 1:
        return False
    record.claim, record.lease_expires_at = claim, lease_end
    return True


def idempotency_begin(
    *, scope: str, client: str, key: str, fingerprint: str
) -> IdempotencyKey | StoredResponse:
    """Claim the client's key (returns the claimed record) or answer from a
    completed one. 422 another body, 409 an attempt holds the lease."""
    for _ in range(3):
        try:
            return _claim_new(
                scope=scope, client=client, key=key, fingerprint=fingerprint
            )
        except IntegrityError:
            existing = IdempotencyKey.objects.filter(
                scope=scope, client=client, key=key
            ).first()
        now = timezone.now()
        if existing is None:
            continue  # released or swept meanwhile: claim again
        if existing.expires_at <= now:
            IdempotencyKey.objects.filter(pk=existing.pk, expires_at__lte=now).delete()
            continue
        if existing.fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was used with another request body."
            )
        if existing.status == IdempotencyKey.Status.IN_PROGRESS:
            lease_end = existing.lease_expires_at
            if lease_end is not None and lease_end > now:
                raise IdempotencyInProgress(
                    "A request with this Idempotency-Key is still being processed."
                )
            if _claim_take_over(record=existing):
                return existing
            continue  # completed or taken by another retry meanwhile: read again
        # A completed key holds what idempotency_complete wrote: a JSON object.
        body = cast("dict[str, Any]", existing.response_body)
        return StoredResponse(existing.response_status or 200, body)
    raise IdempotencyInProgress("This Idempotency-Key is contended; retry.")


def idempotency_complete(*, record: IdempotencyKey, response: StoredResponse) -> None:
    """Store the response of the attempt holding the claim.

    Inside the transaction of the effect (order_place): an attempt whose lease was
    taken over raises, and its effect is rolled back with it.
    """
    completed = IdempotencyKey.objects.filter(
        pk=record.pk, status=IdempotencyKey.Status.IN_PROGRESS, claim=record.claim
    ).update(
        status=IdempotencyKey.Status.COMPLETED,
        lease_expires_at=None,
        response_status=response.status,
        response_body=response.body,
    )
    if completed != 1:
        raise IdempotencyClaimLost(
            "This attempt ran past its lease and another took the Idempotency-Key "
            "over; retry for that attempt's answer."
        )


def idempotency_release(*, record: IdempotencyKey) -> None:
    """Forget a claim whose request failed unexpectedly: the client may retry."""
    IdempotencyKey.objects.filter(
        pk=record.pk, status=IdempotencyKey.Status.IN_PROGRESS, claim=record.claim
    ).delete()


def idempotent_call(
    *,
    scope: str,
    client: str,
    key: str,
    fingerprint: str,
    call: Callable[[IdempotencyKey], StoredResponse],
) -> tuple[StoredResponse, bool]:
    """Run `call` once per key; returns (response, replayed).

    `call` completes the record itself, inside its own transaction, so the response
    is stored atomically with its effect. A deterministic refusal (sold out) is stored
    too; anything else releases the key.
    """
    claimed = idempotency_begin(
        scope=scope, client=client, key=key, fingerprint=fingerprint
    )
    if isinstance(claimed, StoredResponse):
        return claimed, True
    try:
        return call(claimed), False
    except ApplicationError as error:
        if isinstance(error, Replayable):
            idempotency_complete(
                record=claimed,
                response=StoredResponse(error.status_code, error.body()),
            )
        else:
            idempotency_release(record=claimed)
        raise
    except BaseException:
        idempotency_release(record=claimed)
        raise


def idempotency_sweep() -> int:
    """Delete expired keys; returns how many went."""
    deleted, _ = IdempotencyKey.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted
