"""An ASGI middleware that bounds the HTTP requests a process works on at once.

Django runs each request's sync code in a thread of its own under ASGI. A flood of
buyers would otherwise mean hundreds of threads and database connections per process;
here the extra requests wait on the event loop (cheap) for a free slot. Websockets are
not counted: they are long-lived and do their work in async code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


class ConcurrencyLimit:
    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit
        self._semaphore: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._semaphore is None:
            # Created inside the server's event loop, on the first request.
            self._semaphore = asyncio.Semaphore(self.limit)
        async with self._semaphore:
            await self.app(scope, receive, send)
