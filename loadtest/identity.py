"""Who each simulated customer is: an e-mail address per attempt, an address per buyer.

E-mail addresses carry the run's tag and the attempt, so the reconciliation can tell
which order came from which attempt (and spot an attempt that made two orders).

Source addresses: the edge rate-limits the Muskie buy per client address (5/s, burst
10). A load generator on one address would be throttled as if it were one greedy
customer, which is not what a flash sale is. Rather than teach the edge to trust a
client-supplied X-Forwarded-For, each Muskie buyer really connects from an address of
its own in the loopback range (Linux routes all of 127.0.0.0/8 to `lo`), so the edge's
and the orders service's per-client limits apply per buyer, as in production, and a
429 is a buyer's own. Where binding such an address fails (macOS has only 127.0.0.1),
the run falls back to one address and reports the 429s it gets.
"""

from __future__ import annotations

import itertools
import socket
import threading

_counter = itertools.count(1)
_lock = threading.Lock()
EMAIL_DOMAIN = "loadtest.example"


def next_buyer() -> int:
    with _lock:
        return next(_counter)


def source_address(buyer: int) -> str:
    """127.1.0.2, 127.1.0.3, ... one loopback address per buyer (254³ of them)."""
    n = buyer % (254**3)
    return f"127.{1 + n // 254**2}.{(n // 254) % 254}.{n % 254 + 1}"


def source_addresses_work(host: str = "127.0.0.1") -> bool:
    """Whether this machine lets a socket bind 127.1.0.1 (Linux: yes)."""
    try:
        with socket.socket() as sock:
            sock.bind((source_address(1), 0))
    except OSError:
        return False
    return host.startswith("127.") or host == "localhost"


def email(kind: str, buyer: int, attempt: int, run_tag: str) -> str:
    """`m17a2.<tag>@loadtest.example`: Muskie buyer 17's second attempt in this run."""
    return f"{kind}{buyer}a{attempt}.{run_tag}@{EMAIL_DOMAIN}"


def email_parse(address: str) -> tuple[str, int, int, str] | None:
    """(kind, buyer, attempt, run_tag) of an address `email` made, else None."""
    local, _, domain = address.partition("@")
    if domain != EMAIL_DOMAIN or "." not in local:
        return None
    who, _, tag = local.partition(".")
    kind = who[:1]
    buyer, sep, attempt = who[1:].partition("a")
    if not (sep and buyer.isdigit() and attempt.isdigit()):
        return None
    return kind, int(buyer), int(attempt), tag
