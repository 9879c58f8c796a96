"""Idempotency-Key handling, after Stripe and the IETF httpapi draft.

The key is stored with a fingerprint of its request and, once done, the first
response. A replay with the same body gets that response again; the same key with
another body is 422; a request arriving while the first is still running is 409; keys
expire after ORDERS_IDEMPOTENCY_TTL_SECONDS (24 h) and are swept.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone

from common.errors import ApplicationError
from orders_api.exceptions import (
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


def idempotency_begin(
    *, scope: str, key: str, fingerprint: str
) -> IdempotencyKey | StoredResponse:
    """Claim the key (returns the new record) or answer from a completed one."""
    for _ in range(3):
        now = timezone.now()
        try:
            # One INSERT in autocommit: the unique constraint decides who claims.
            return IdempotencyKey.objects.create(
                scope=scope,
                key=key,
                fingerprint=fingerprint,
                status=IdempotencyKey.Status.IN_PROGRESS,
                expires_at=now
                + timedelta(seconds=settings.ORDERS_IDEMPOTENCY_TTL_SECONDS),
            )
        except IntegrityError:
            existing = IdempotencyKey.objects.filter(scope=scope, key=key).first()
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
            raise IdempotencyInProgress(
                "A request with this Idempotency-Key is still being processed."
            )
        # A completed key holds what idempotency_complete wrote: a JSON object.
        body = cast("dict[str, Any]", existing.response_body)
        return StoredResponse(existing.response_status or 200, body)
    raise IdempotencyInProgress("This Idempotency-Key is contended; retry.")


def idempotency_complete(*, record: IdempotencyKey, response: StoredResponse) -> None:
    IdempotencyKey.objects.filter(pk=record.pk).update(
        status=IdempotencyKey.Status.COMPLETED,
        response_status=response.status,
        response_body=response.body,
    )


def idempotency_release(*, record: IdempotencyKey) -> None:
    """Forget a claim whose request failed unexpectedly: the client may retry."""
    IdempotencyKey.objects.filter(
        pk=record.pk, status=IdempotencyKey.Status.IN_PROGRESS
    ).delete()


def idempotent_call(
    *,
    scope: str,
    key: str,
    fingerprint: str,
    call: Callable[[IdempotencyKey], StoredResponse],
) -> tuple[StoredResponse, bool]:
    """Run `call` once per key; returns (response, replayed).

    `call` completes the record itself, inside its own transaction, so the response
    is stored atomically with its effect. A deterministic refusal (sold out) is stored
    too; anything else releases the key.
    """
    claimed = idempotency_begin(scope=scope, key=key, fingerprint=fingerprint)
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
