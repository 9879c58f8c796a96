"""One pooled httpx client per process, made when first used.

A service calling another over HTTP keeps one client (its connection pool) for the
life of the process, shared by its threads. Made on first use, not at import: a
preloading master imports the module and forks, and each worker needs a pool of its
own.
"""

from __future__ import annotations

import threading

import httpx


class LazyClient:
    """`.get()` gives this process's client, made on the first call."""

    def __init__(
        self,
        *,
        max_connections: int,
        max_keepalive_connections: int,
        timeout: float = 10.0,
    ) -> None:
        self._limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_keepalive_connections,
        )
        self._timeout = timeout
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def get(self) -> httpx.Client:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = httpx.Client(
                        limits=self._limits, timeout=self._timeout
                    )
        return self._client
