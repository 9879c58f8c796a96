"""Throw-away PostgreSQL databases for the processes a test or a benchmark starts.

Each lives on the server that DATABASE_URL points at, its name ending in
TEST_DATABASE_SUFFIX, so two checkouts can run their suites at once on one server.
"""

from __future__ import annotations

import os
import time

import dj_database_url
import psycopg
from psycopg import sql

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def scoped(name: str) -> str:
    """The name a throw-away database really has on the server (with the suffix)."""
    suffix = os.environ.get("TEST_DATABASE_SUFFIX", "")
    return name if name == "postgres" else f"{name}{suffix}"


def database_url(name: str) -> str:
    """The URL of database `name` on the server that DATABASE_URL points at."""
    base = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    head, _, query = base.partition("?")
    head = head.rsplit("/", 1)[0]
    return f"{head}/{scoped(name)}" + (f"?{query}" if query else "")


def _admin_connect() -> psycopg.Connection:
    cfg = dj_database_url.parse(database_url("postgres"))
    # Other checkouts run their suites on the same server: when it is full for a
    # moment ("too many clients"), wait for a slot rather than fail a set-up.
    deadline = time.monotonic() + 30
    while True:
        try:
            return psycopg.connect(
                dbname="postgres",
                user=cfg.get("USER") or None,
                password=cfg.get("PASSWORD") or None,
                host=cfg.get("HOST") or (cfg.get("OPTIONS") or {}).get("host") or None,
                port=cfg.get("PORT") or None,
                autocommit=True,
            )
        except psycopg.OperationalError as error:
            if "too many clients" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def database_drop(name: str) -> None:
    with _admin_connect() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(scoped(name))
            )
        )


def database_recreate(name: str) -> None:
    database_drop(name)
    with _admin_connect() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scoped(name))))
