"""Which side of a canary a visitor is on: the same function in both engines.

The edge gives each visitor a random id (`edge_visitor` cookie, 32 hex digits, drawn
once) and puts the visitor in the canary when `murmur_hash2(id)` falls below the
canary's share of 2^32 - 1, exactly as nginx's `split_clients "$cookie_edge_visitor"
{ N% strangler; * legacy; }` decides: the same MurmurHash2 (nginx's
`ngx_murmur_hash2`: seed = length, little-endian words) and the same thresholds
(`percent * 100 * 0xffffffff // 10000`, cumulative). So the Python edge and nginx put
every visitor on the same side, and raising the percent only ever moves visitors
from legacy into the canary.

A visitor can send any id it likes; that picks a side no better than any random id
would (each id lands on one side, by the hash), so the canary is a way to spread
load and risk, never an access control. An id that is not 32 hex digits is replaced.
"""

from __future__ import annotations

import re
import secrets

VISITOR_COOKIE = "edge_visitor"
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_VISITOR_ID = re.compile(r"^[0-9a-f]{32}$")


def murmur_hash2(data: bytes) -> int:
    """nginx's ngx_murmur_hash2 (src/core/ngx_murmurhash.c), 32 bits."""
    length = len(data)
    h = length & _MASK
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length - whole
    if rest == 3:
        h ^= data[whole + 2] << 16
    if rest >= 2:
        h ^= data[whole + 1] << 8
    if rest >= 1:
        h ^= data[whole]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def canary_threshold(percent: int) -> int:
    """split_clients' bound for a first part of `percent` %: hashes below it."""
    return percent * 100 * _MASK // 10000


def in_canary(visitor_id: str, percent: int) -> bool:
    # nginx refuses a 0% part: with no canary, the nginx engine has no split at all.
    if percent <= 0:
        return False
    return murmur_hash2(visitor_id.encode()) < canary_threshold(percent)


def visitor_id_valid(value: str) -> bool:
    return _VISITOR_ID.match(value) is not None


def visitor_id_new() -> str:
    return secrets.token_hex(16)
