"""The edge's mode (legacy, strangler, canary N %), kept in Redis for every worker.

A change is one Lua script: bump the version, store the mode, publish it. Workers
follow the channel and also re-read the key every `poll_interval` seconds, so a
missed message (a Redis restart, a reconnect) costs at most one poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import redis
import redis.asyncio as aioredis

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


class ModeFollower:
    """A worker's view of the mode: `current` is read on every request."""

    def __init__(
        self,
        client: aioredis.Redis,
        key: str,
        default: Mode,
        poll_interval: float,
        on_change: Callable[[Mode, Mode], None] | None = None,
    ) -> None:
        self.client = client
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
        if mode == self.current:
            return
        if not authoritative and mode.version <= self.current.version:
            return
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
                async with self.client.pubsub() as pubsub:
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
