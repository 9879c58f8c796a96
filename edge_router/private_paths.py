"""Paths no profile may send to an origin: the table's check that a `deny`
behaviour takes every request under them, in every spelling and with every method.

Matching is on the normalised, lower-cased path, so checking match keys is checking
every spelling. The probes are each private prefix, paths below it, and every
pattern of the profile that reaches below it with its wildcards filled in, so a
narrower proxy behaviour placed before the deny is found too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from edge_router.paths import match_key

if TYPE_CHECKING:
    from edge_router.routes import Profile

# The shop's token-guarded internal API: stock levels and transfers, the order list
# with buyers' e-mails.
PRIVATE_PREFIXES = ("/internal/",)
SHOWN = 4


def private_probes(patterns: Iterable[str]) -> list[str]:
    probes = set()
    for prefix in PRIVATE_PREFIXES:
        probes |= {prefix, prefix + "x/", prefix + "x/y/"}
        for pattern in patterns:
            filled = re.sub(r"[*?]", "x", pattern.lower())
            if filled.startswith(prefix):
                probes.add(match_key(filled))
    return sorted(probes)


def private_leaks(profile: Profile, methods: Iterable[str]) -> list[str]:
    """`METHOD key -> behaviour` for every probe a proxying behaviour would take."""
    leaks = []
    for key in private_probes(b.pattern for b in profile.behaviours):
        for method in sorted(methods):
            behaviour = profile.match(method, key)
            if not behaviour.denied:
                leaks.append(f"{method} {key} -> {behaviour.name}")
    return leaks


def private_paths_problem(profile: Profile, methods: Iterable[str]) -> str | None:
    """The table's problem with this profile, if it leaks a private path."""
    leaks = private_leaks(profile, methods)
    if not leaks:
        return None
    more = f" (and {len(leaks) - SHOWN} more)" if len(leaks) > SHOWN else ""
    return (
        f"profile {profile.name!r} sends private paths "
        f"({', '.join(PRIVATE_PREFIXES)}) to an origin; put a behaviour with "
        f'kind = "deny" first for them: {"; ".join(leaks[:SHOWN])}{more}'
    )
