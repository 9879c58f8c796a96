"""The route table's model: origins, behaviours, profiles and the table itself.

Built and validated by edge_router/routes.py (which every caller imports them
from); matched per request by the edge (edge_router/app.py) and said in nginx's and
Envoy's terms by the exports.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge_router.listener import ListenerLimits, WebsocketLimits

PROFILES = ("legacy", "strangler")
HTTP_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"}
)
# What a behaviour does: `proxy` forwards to its origin; `deny` answers 404 itself
# and never reaches an origin (it names none).
KINDS = ("proxy", "deny")
# The origin a `deny` behaviour names in logs, metrics and X-Edge-Origin.
NO_ORIGIN_NAME = "none"


@dataclass(frozen=True)
class Rate:
    """A token bucket: `per_second` tokens refill, at most `burst` saved up."""

    text: str
    per_second: float
    burst: int


@dataclass(frozen=True)
class Origin:
    """An HTTP origin (`url`, `host`, `port`), or a directory the edge serves
    itself (`root`; its `url` is the directory, for people): edge_router/sites.py."""

    name: str
    url: str
    env: str
    host: str
    port: int
    root: Path | None = None
    cache_control: str = ""
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def static(self) -> bool:
        return self.root is not None


NO_ORIGIN = Origin(NO_ORIGIN_NAME, "", "", "", 0)


@dataclass(frozen=True)
class Behaviour:
    name: str
    pattern: str
    origin: Origin
    methods: frozenset[str] | None
    timeout: float
    max_body: int
    rate: Rate | None
    # The share of its requests the edge traces (0 to 1); see edge_router/tracing.py.
    trace: float
    # How the (lower-case) match key is tested; see `compile_pattern`.
    prefix: str = field(repr=False, default="")
    exact: bool = field(repr=False, default=False)
    regex: re.Pattern[str] | None = field(repr=False, default=None)
    kind: str = "proxy"
    # Set on every answer this behaviour relays (the origin's own is dropped);
    # None: the origin's Cache-Control passes as it is, the edge adds none.
    cache_control: str | None = None

    @property
    def denied(self) -> bool:
        return self.kind == "deny"

    def matches(self, method: str, key: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        return self.matches_path(key)

    def matches_path(self, key: str) -> bool:
        if self.regex is not None:
            return self.regex.match(key) is not None
        if self.exact:
            return key == self.prefix
        return key.startswith(self.prefix)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.pattern,
            "methods": sorted(self.methods) if self.methods else None,
            "origin": self.origin.name,
            "origin_url": self.origin.url,
            "timeout": self.timeout,
            "max_body": self.max_body,
            "rate": self.rate.text if self.rate else None,
            "burst": self.rate.burst if self.rate else None,
            "trace": self.trace,
            "kind": self.kind,
            "cache_control": self.cache_control,
        }


@dataclass(frozen=True)
class Profile:
    name: str
    behaviours: tuple[Behaviour, ...]

    def match(self, method: str, key: str) -> Behaviour:
        for behaviour in self.behaviours:
            if behaviour.matches(method, key):
                return behaviour
        # Validation guarantees a catch-all last; this is never reached.
        return self.behaviours[-1]


@dataclass(frozen=True)
class RouteTable:
    source: str
    origins: dict[str, Origin]
    profiles: dict[str, Profile]
    listener: ListenerLimits = field(default_factory=ListenerLimits)
    websockets: WebsocketLimits = field(default_factory=WebsocketLimits)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "origins": {o.name: o.url for o in self.origins.values()},
            "listener": asdict(self.listener),
            "websockets": asdict(self.websockets),
            "profiles": {
                name: [b.as_dict() for b in profile.behaviours]
                for name, profile in self.profiles.items()
            },
        }
