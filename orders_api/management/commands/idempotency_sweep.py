"""`python manage.py idempotency_sweep`: delete expired Idempotency-Keys (> 24 h)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from orders_api.ordering.idempotency import idempotency_sweep


class Command(BaseCommand):
    help = "Delete expired idempotency keys (the relay also does it periodically)."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"deleted {idempotency_sweep()} expired idempotency keys")
