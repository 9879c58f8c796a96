"""The demo's services as real processes for tests, each with a database of its own:
the Procfile's own lines (common/harness/services.py)."""

from __future__ import annotations

import psycopg

from common.harness.databases import database_url
from common.harness.services import INTERNAL_TOKEN, shop_process, warehouse_process

__all__ = ["INTERNAL_TOKEN", "fulfillment_refs", "shop_process", "warehouse_process"]

# What a caller inside the test process sends to the processes above.
INTERNAL_AUTH = {"Authorization": f"Bearer {INTERNAL_TOKEN}"}


def fulfillment_refs(db_name: str) -> list[str]:
    """The order refs the warehouse has fulfilled, read from its own database."""
    with psycopg.connect(database_url(db_name)) as conn:
        rows = conn.execute("SELECT order_ref FROM warehouse_fulfillment").fetchall()
    return [row[0] for row in rows]
