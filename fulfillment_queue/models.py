"""The fulfillment queue's table (database `fulfillment_queue`): the dead letters."""

from __future__ import annotations

from django.db import models


class DeadLetter(models.Model):
    """An order the warehouse would not take after every retry (or refused outright).

    Listed and replayed with `python manage.py fulfillment dlq list|replay`.
    """

    event_id = models.UUIDField()
    order_ref = models.CharField(max_length=64, db_index=True)
    # The `orders.order-accepted` envelope exactly as it arrived.
    envelope = models.JSONField()
    reason = models.TextField()
    attempts = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    replayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # One open dead letter per event: a duplicate delivery does not add one.
            models.UniqueConstraint(
                fields=["event_id"],
                condition=models.Q(replayed_at__isnull=True),
                name="deadletter_one_open_per_event",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order_ref}: {self.reason[:60]}"
