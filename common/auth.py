"""The one bearer-token check of the internal APIs (shop, orders, warehouse).

No token (or not `Bearer`) is 401 with a `WWW-Authenticate` challenge; a wrong one is
403. The comparison takes the same time whatever the token, so timing tells nothing.
Works on a Django HttpRequest and on a DRF Request alike (both have `.headers`).
"""

from __future__ import annotations

import hmac
from typing import Any

from common.errors import Forbidden, NotAuthenticated


def bearer_token_check(*, request: Any, expected: str, realm: str) -> None:
    """Return when the request carries `Authorization: Bearer <expected>`, else raise
    NotAuthenticated (401) or Forbidden (403)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise NotAuthenticated("Send Authorization: Bearer <token>.", realm=realm)
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Forbidden("That token is not valid here.")


def bearer_headers(token: str) -> dict[str, str]:
    """The `Authorization` header a caller of an internal API sends.

    None without a token: the server's 401 then says what is missing, where a bare
    `Bearer ` (not even a legal header value) would fail before leaving the process
    and look like a network fault.
    """
    return {"Authorization": f"Bearer {token}"} if token else {}
