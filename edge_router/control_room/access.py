"""Who may use the control room: the admin token, as a Bearer header (a terminal,
curl) or as the cookie the login form gives (a browser on the big screen).

The cookie holds no token: it is `name.issued.signature`, the signature an HMAC of
the name and the moment with the admin token as key, so it names who acts (the log
says who did what) and ends after SESSION_SECONDS or when the token changes. It is
HttpOnly, SameSite=Strict and scoped to the control room's path, so another site's
page can neither read it nor make the browser send it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from http.cookies import SimpleCookie

COOKIE = "edge_control"
COOKIE_PATH = "/_edge/control/"
SESSION_SECONDS = 12 * 3600
NAME = re.compile(r"^[\w .@-]{1,40}$")


class LoginRefused(ValueError):
    """A name the log could not show, or a token that is not the admin token."""


def _signature(token: str, name: str, issued: int) -> str:
    message = f"control-room|{name}|{issued}".encode()
    return hmac.new(token.encode(), message, hashlib.sha256).hexdigest()


def session_make(*, token: str, name: str, given: str, now: float | None = None) -> str:
    """The cookie's value for `name`, once `given` is the admin token."""
    name = name.strip()
    if not NAME.match(name):
        raise LoginRefused(
            "a name of 1 to 40 letters, digits, spaces or . @ - _ says who acts"
        )
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise LoginRefused("that is not the edge's admin token")
    issued = int(time.time() if now is None else now)
    encoded = base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")
    return f"{encoded}.{issued}.{_signature(token, name, issued)}"


def session_who(*, token: str, cookie_header: bytes | None) -> str | None:
    """The name a valid, unexpired cookie carries; None otherwise."""
    if not cookie_header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(cookie_header.decode("latin-1"))
    except Exception:  # http.cookies raises CookieError and worse on junk
        return None
    morsel = jar.get(COOKIE)
    if morsel is None:
        return None
    encoded, _, rest = morsel.value.partition(".")
    issued_text, _, signature = rest.partition(".")
    if not issued_text.isdigit():
        return None
    try:
        name = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    issued = int(issued_text)
    if not 0 <= time.time() - issued <= SESSION_SECONDS:
        return None
    if not hmac.compare_digest(signature, _signature(token, name, issued)):
        return None
    return name


def bearer_given(header: bytes | None) -> bytes | None:
    if not header or header[:7].lower() != b"bearer ":
        return None
    return header[7:].strip()


def identify(
    *, token: str, authorization: bytes | None, cookie_header: bytes | None
) -> tuple[str | None, int]:
    """(who, 0) for the token or a valid cookie; (None, 401) when neither was
    given, (None, 403) when what was given is wrong or expired."""
    given = bearer_given(authorization)
    if given is not None:
        if hmac.compare_digest(given, token.encode()):
            return "token", 0
        return None, 403
    who = session_who(token=token, cookie_header=cookie_header)
    if who is not None:
        return who, 0
    has_cookie = cookie_header is not None and COOKIE.encode() in cookie_header
    return None, 403 if has_cookie else 401


def cookie_header(value: str) -> tuple[bytes, bytes]:
    # No Secure flag: the admin side is plain HTTP on the loopback (a Secure cookie
    # would never come back); put it behind HTTPS and it needs one.
    flags = f"Path={COOKIE_PATH}; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}"
    return (b"set-cookie", f"{COOKIE}={value}; {flags}".encode())


def cookie_clear() -> tuple[bytes, bytes]:
    return (
        b"set-cookie",
        f"{COOKIE}=; Path={COOKIE_PATH}; HttpOnly; SameSite=Strict; Max-Age=0".encode(),
    )
