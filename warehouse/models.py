"""The warehouse's tables (database `fulfillment`): fulfilments and refusals."""

from __future__ import annotations

from django.db import models


class TimeStamped(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Fulfillment(TimeStamped):
    """One order, picked and packed. At most one per order_ref, ever (idempotency)."""

    order_ref = models.CharField(max_length=64)
    # [{"sku": str, "quantity": int}, ...] in the order the client sent them.
    lines = models.JSONField()
    units = models.PositiveIntegerField()
    handling_ms = models.PositiveIntegerField()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order_ref"], name="fulfillment_unique_order_ref"
            ),
            models.CheckConstraint(
                condition=models.Q(units__gte=1), name="fulfillment_units_gte_1"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order_ref} ({self.units} units)"


class Refusal(TimeStamped):
    """An order turned away because the warehouse was at capacity (HTTP 503)."""

    order_ref = models.CharField(max_length=64, db_index=True)
    capacity = models.PositiveIntegerField()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.order_ref} refused at capacity {self.capacity}"
