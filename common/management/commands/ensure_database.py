"""Create this service's own PostgreSQL database if it does not exist yet."""

from __future__ import annotations

import psycopg
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from psycopg import sql


class Command(BaseCommand):
    help = "Create the database named in this service's settings, if missing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default="default")

    def handle(self, *args: object, **options: object) -> None:
        alias = str(options["database"])
        conn = connections[alias]
        params = conn.get_connection_params()
        name = conn.settings_dict["NAME"]
        params.pop("dbname", None)
        params.pop("cursor_factory", None)
        params.pop("context", None)
        params.pop("prepare_threshold", None)
        try:
            with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
                exists = admin.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", [name]
                ).fetchone()
                if exists:
                    self.stdout.write(f"database {name!r} exists")
                    return
                admin.execute(
                    sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
                )
        except psycopg.errors.DuplicateDatabase:
            self.stdout.write(f"database {name!r} exists")
            return
        except psycopg.OperationalError as exc:
            raise CommandError(
                f"cannot reach PostgreSQL to create {name!r}: {exc}"
            ) from exc
        self.stdout.write(self.style.SUCCESS(f"created database {name!r}"))
