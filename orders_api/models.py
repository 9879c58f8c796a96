"""The orders service's tables (database `orders`): sales, orders, events, idempotency.

The database is the ground truth of the allocation: `units_sold <= units_allocated` is
a CHECK constraint, and the Redis admission counter is rebuilt from these rows.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models

from common import events

# A live sale holds shop stock: at most one a product (a unique constraint), and the
# one definition the selectors use (sales.selectors.sales_live).
LIVE_SALE_STATUSES = ["opening", "open", "closing"]


class TimeStamped(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Sale(TimeStamped):
    """Units of one shop product handed to this service for a flash sale.

    `units_allocated` came from the shop's stock (a stock transfer); `units_sold` is
    folded in by the relay from the orders (`Order.tallied`), off the hot path.
    """

    class Status(models.TextChoices):
        OPENING = "opening", "Opening (taking stock from the shop)"
        OPEN = "open", "Open"
        CLOSING = "closing", "Closing (giving unsold stock back)"
        CLOSED = "closed", "Closed"

    slug = models.SlugField(max_length=120)
    status = models.CharField(max_length=16, choices=Status.choices)
    # The product snapshot, taken from the shop when the sale opened.
    sku = models.CharField(max_length=32)
    name = models.CharField(max_length=120)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    description = models.TextField(blank=True)
    image = models.CharField(max_length=200, blank=True)
    category_name = models.CharField(max_length=80, blank=True)
    category_slug = models.SlugField(max_length=80, blank=True)
    units_requested = models.PositiveIntegerField()
    units_allocated = models.PositiveIntegerField(default=0)
    units_sold = models.PositiveIntegerField(default=0)
    # Units given back to the shop by the close.
    units_returned = models.PositiveIntegerField(default=0)
    # Units of failed orders given back to the sale (they are for sale again).
    units_released = models.PositiveIntegerField(default=0)
    open_transfer_id = models.CharField(max_length=64, unique=True)
    close_transfer_id = models.CharField(max_length=64, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(units_sold__lte=models.F("units_allocated")),
                name="sale_sold_lte_allocated",
            ),
            models.UniqueConstraint(
                fields=["slug"],
                condition=models.Q(status__in=LIVE_SALE_STATUSES),
                name="sale_one_live_per_slug",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status}, {self.units_allocated} units)"


class Order(TimeStamped):
    class Status(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        QUEUED = "queued", "Queued for the warehouse"
        IN_WAREHOUSE = "in_warehouse", "In the warehouse"
        FULFILLED = "fulfilled", "Fulfilled"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The customer's order number, and the warehouse's order_ref.
    number = models.CharField(max_length=20, unique=True)
    sale = models.ForeignKey(Sale, on_delete=models.PROTECT, related_name="orders")
    sku = models.CharField(max_length=32)
    name = models.CharField(max_length=120)
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)
    quantity = models.PositiveSmallIntegerField()
    total = models.DecimalField(max_digits=12, decimal_places=2)
    email = models.EmailField()
    status = models.CharField(max_length=16, choices=Status.choices)
    # sha256 of the access token handed out on 202 (the token itself is not stored).
    access_token_hash = models.CharField(max_length=64)
    trace_id = models.CharField(max_length=32)
    # Folded into Sale.units_sold by the relay.
    tallied = models.BooleanField(default=False)
    # Its units went back to the sale when it failed (once: sales/returns.py).
    units_released = models.BooleanField(default=False)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quantity__gte=1), name="order_quantity_gte_1"
            ),
        ]
        indexes = [
            models.Index(fields=["sale", "status"], name="order_sale_status"),
            models.Index(
                fields=["sale"],
                condition=models.Q(tallied=False),
                name="order_untallied",
            ),
        ]

    def __str__(self) -> str:
        return self.number


class Event(models.Model):
    """The event log; rows with `outbox_pending` are the transactional outbox.

    Every event this service emits or receives is kept here in its envelope, so an
    order's journey can be listed and events re-published.
    """

    id = models.UUIDField(primary_key=True)
    type = models.CharField(max_length=64)
    source = models.CharField(max_length=64)
    time = models.DateTimeField()
    trace_id = models.CharField(max_length=32)
    version = models.PositiveSmallIntegerField(default=1)
    data = models.JSONField()
    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, related_name="events", null=True
    )
    recorded_at = models.DateTimeField(auto_now_add=True)
    # Whether this event changed the order's status (a late one may not).
    applied = models.BooleanField(default=True)
    outbox_pending = models.BooleanField(default=False)
    published_at = models.DateTimeField(null=True, blank=True)
    publish_count = models.PositiveIntegerField(default=0)
    # The W3C trace context (`traceparent`, `tracestate`) of the request that wrote
    # the event, so the relay's publish continues that request's trace. Not part of
    # the envelope: the message carries its own context in its headers.
    trace_context = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["time", "recorded_at"]
        indexes = [
            models.Index(fields=["recorded_at"], name="event_recorded_at"),
            models.Index(
                fields=["recorded_at"],
                condition=models.Q(outbox_pending=True),
                name="event_outbox_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"

    def envelope(self) -> dict[str, Any]:
        """The stored event as the contract's envelope (common.events)."""
        return events.Envelope(
            id=self.id,
            type=self.type,
            source=self.source,
            time=self.time,
            trace_id=self.trace_id,
            version=self.version,
            data=self.data,
        ).as_json()


class IdempotencyKey(models.Model):
    """An Idempotency-Key of one client, with its request's fingerprint, the lease
    of the attempt running it and, once done, its first response (no access token:
    docs/guides/orders.md#idempotency)."""

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"

    # What the key is for (the endpoint) and whose it is (a digest of the client).
    scope = models.CharField(max_length=64)
    client = models.CharField(max_length=80, default="")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices)
    # The attempt holding an in-progress key, until lease_expires_at; a later
    # attempt may take an expired lease over (a new claim).
    claim = models.CharField(max_length=32, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["scope", "client", "key"],
                name="idempotencykey_unique_scope_client_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.client} {self.key} ({self.status})"
