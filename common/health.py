"""What every service's health endpoint asks: does its database answer?"""

from __future__ import annotations

from django.db import DatabaseError, connection


def database_ping() -> bool:
    """True when the database answers a `SELECT 1`."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except DatabaseError:
        return False
