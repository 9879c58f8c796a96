"""The edge's mode (legacy, strangler, canary N %), kept in Redis for every worker.

A change is one Lua script: bump the version, store the mode, publish it. Workers
follow the channel and also re-read the key every `poll_interval` seconds (0.5 s),
so a missed message (a Redis restart, a reconnect) costs at most one poll, and two
workers never disagree for longer than a poll plus a read's timeout (about 1.5 s).

Every mode a worker takes is also written to a small file shared by the workers of
one edge (`EDGE_MODE_CACHE`): a worker that starts while Redis is down serves the
last mode its siblings knew, not the default. Redis's clients have timeouts, check a
pooled connection that sat idle before using it, and retry once at once on a
connection error, so a connection left stale by a Redis restart costs no 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

MODES = ("legacy", "strangler", "canary")
logger = logging.getLogger("edge_router.modes")

_SET_MODE = """
local version = redis.call('INCR', KEYS[2])
local doc = cjson.encode({mode = ARGV[1], percent = tonumber(ARGV[2]),
                          version = version, changed_at = ARGV[3]})
redis.call('SET', KEYS[1], doc)
redis.call('PUBLISH', KEYS[1], doc)
return doc
"""


class ModeError(ValueError):
    """A mode that does not exist, or a percent that does not fit it."""


@dataclass(frozen=True)
class Mode:
    mode: str
    percent: int = 0
    version: int = 0
    changed_at: str = ""

    def describe(self) -> str:
        return f"canary {self.percent}%" if self.mode == "canary" else self.mode

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def mode_validate(mode: Any, percent: Any = None) -> Mode:
    """A Mode from untrusted input; `ModeError` says precisely what is wrong."""
    if not isinstance(mode, str) or mode not in MODES:
        raise ModeError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    if mode != "canary":
        if percent is not None:
            raise ModeError(f"percent applies to canary only, not to {mode}")
        return Mode(mode)
    if percent is None:
        raise ModeError("canary needs a percent (0-100)")
    if isinstance(percent, bool) or not isinstance(percent, int):
        raise ModeError(f"percent must be a whole number 0-100; got {percent!r}")
    if not 0 <= percent <= 100:
        raise ModeError(f"percent must be between 0 and 100; got {percent}")
    return Mode(mode, percent)


def mode_parse_default(text: str) -> Mode:
    """`EDGE_DEFAULT_MODE`: `legacy`, `strangler` or `canary:N`."""
    name, _, percent = text.strip().partition(":")
    if name == "canary":
        if not percent.isdigit():
            raise ModeError(f"EDGE_DEFAULT_MODE={text!r}: write canary:N, N 0-100")
        return mode_validate(name, int(percent))
    if percent:
        raise ModeError(f"EDGE_DEFAULT_MODE={text!r}: only canary takes :N")
    return mode_validate(name)


def mode_decode(raw: bytes | str | None, default: Mode) -> Mode:
    if raw is None:
        return default
    try:
        doc = json.loads(raw)
        found = mode_validate(
            doc["mode"], doc.get("percent") if doc["mode"] == "canary" else None
        )
        return Mode(
            found.mode, found.percent, int(doc["version"]), str(doc["changed_at"])
        )
    except (ValueError, KeyError, TypeError) as error:
        logger.warning("ignoring an unreadable mode in Redis (%s): %r", error, raw)
        return default


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _version_key(key: str) -> str:
    return f"{key}:version"


def mode_write(client: redis.Redis, key: str, mode: Mode) -> Mode:
    """Store and publish a validated mode (sync: the CLI)."""
    doc = client.eval(
        _SET_MODE, 2, key, _version_key(key), mode.mode, mode.percent, _now()
    )
    return mode_decode(doc, mode)


async def mode_write_async(client: aioredis.Redis, key: str, mode: Mode) -> Mode:
    """Store and publish a validated mode (async: `POST /_edge/mode`)."""
    doc = await client.eval(
        _SET_MODE, 2, key, _version_key(key), mode.mode, mode.percent, _now()
    )
    return mode_decode(doc, mode)


def mode_read(client: redis.Redis, key: str, default: Mode) -> Mode:
    return mode_decode(client.get(key), default)


def redis_client(url: str, *, read_timeout: float | None = 1.0) -> aioredis.Redis:
    """A client for the edge: it fails fast (0.5 s to connect, `read_timeout` for an
    answer), PINGs a connection idle for 2 s before using it, and retries once, at
    once, on a connection error or timeout (a stale pooled connection)."""
    return aioredis.from_url(
        url,
        socket_connect_timeout=0.5,
        socket_timeout=read_timeout,
        health_check_interval=2,
        retry=Retry(NoBackoff(), 1),
    )


def mode_cache_path(redis_url: str, key: str) -> Path:
    """The default `EDGE_MODE_CACHE`: one file per Redis and mode key, in the
    temporary directory, so the workers of one edge (and its restarts) share it."""
    digest = hashlib.sha256(f"{redis_url} {key}".encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"edge-mode-{digest}.json"


def mode_cache_write(path: Path, mode: Mode) -> None:
    """Replace the file whole (never half-written for a sibling to read)."""
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
        with os.fdopen(fd, "w") as out:
            json.dump(mode.as_dict(), out)
        os.replace(temporary, path)
    except OSError as error:
        logger.warning("cannot keep the mode in %s: %s", path, error)


def mode_cache_read(path: Path, default: Mode) -> Mode | None:
    try:
        raw = path.read_text()
    except OSError:
        return None
    found = mode_decode(raw, default)
    return found if found is not default else None


class ModeFollower:
    """A worker's view of the mode: `current` is read on every request."""

    def __init__(
        self,
        client: aioredis.Redis,
        key: str,
        default: Mode,
        poll_interval: float,
        on_change: Callable[[Mode, Mode], None] | None = None,
        *,
        listener: aioredis.Redis | None = None,
        cache: Path | None = None,
    ) -> None:
        self.client = client
        # Subscribing blocks on a read: a client of its own, without a read timeout.
        self.listener = listener or client
        self.cache = cache
        self._cached: Mode | None = None
        self.key = key
        self.default = default
        self.poll_interval = poll_interval
        self.current = default
        self.redis_ok = False
        self._on_change = on_change
        self._tasks: list[asyncio.Task[None]] = []

    def _adopt(self, mode: Mode, *, authoritative: bool) -> None:
        # A published message only moves forward; a read of the key is the truth
        # (it may go back to the default if Redis lost its data).
        if mode != self.current and (
            authoritative or mode.version > self.current.version
        ):
            self._switch(mode)
        if self.cache is not None and self.current != self._cached:
            mode_cache_write(self.cache, self.current)
            self._cached = self.current

    def _switch(self, mode: Mode) -> None:
        previous, self.current = self.current, mode
        logger.info(
            "mode %s -> %s (version %s)",
            previous.describe(),
            mode.describe(),
            mode.version,
        )
        if self._on_change is not None:
            self._on_change(previous, mode)

    async def refresh(self) -> None:
        try:
            raw = await self.client.get(self.key)
        except (redis.RedisError, OSError) as error:
            if self.redis_ok:
                logger.warning(
                    "Redis unreachable, keeping mode %s: %s",
                    self.current.describe(),
                    error,
                )
            self.redis_ok = False
            return
        self.redis_ok = True
        self._adopt(mode_decode(raw, self.default), authoritative=True)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            await self.refresh()

    async def _listen(self) -> None:
        while True:
            try:
                async with self.listener.pubsub() as pubsub:
                    await pubsub.subscribe(self.key)
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._adopt(
                                mode_decode(message["data"], self.current),
                                authoritative=False,
                            )
            except (redis.RedisError, OSError):
                await asyncio.sleep(self.poll_interval)

    async def start(self) -> None:
        await self.refresh()
        if not self.redis_ok and self.cache is not None:
            # Redis is down: take the last mode the other workers knew.
            known = mode_cache_read(self.cache, self.default)
            if known is not None:
                logger.warning(
                    "Redis unreachable at start: mode %s (version %s) from %s",
                    known.describe(),
                    known.version,
                    self.cache,
                )
                self._cached = known
                self._adopt(known, authoritative=True)
        self._tasks = [
            asyncio.create_task(self._listen(), name="edge-mode-listen"),
            asyncio.create_task(self._poll(), name="edge-mode-poll"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.client.aclose()
        if self.listener is not self.client:
            await self.listener.aclose()
