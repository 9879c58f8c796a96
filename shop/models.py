"""The legacy shop's tables: catalogue, orders, stock transfers. The `shop` database."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.urls import reverse


class TimeStamped(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Category(TimeStamped):
    name = models.CharField(max_length=80, unique=True)
    slug = models.SlugField(max_length=80, unique=True)
    description = models.TextField(blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("shop:category", kwargs={"category": self.slug})


class Product(TimeStamped):
    category = models.ForeignKey(
        Category, on_delete=models.PROTECT, related_name="products"
    )
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=120)
    sku = models.CharField(max_length=32, unique=True)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    description = models.TextField(blank=True)
    stock = models.IntegerField(default=0)
    image = models.CharField(
        max_length=200, blank=True, help_text="Static path of the product drawing."
    )
    featured = models.BooleanField(default=False)
    # Set while the orders service runs a sale of it: the legacy basket and checkout
    # send buyers there instead of selling what stock the shop kept.
    sale_url = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["category__position", "name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(stock__gte=0), name="product_stock_gte_0"
            ),
            models.CheckConstraint(
                condition=models.Q(price__gt=Decimal("0")), name="product_price_gt_0"
            ),
            models.UniqueConstraint(
                fields=["category", "slug"], name="product_unique_slug_per_category"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse(
            "shop:product", kwargs={"category": self.category.slug, "slug": self.slug}
        )

    @property
    def in_stock(self) -> bool:
        return self.stock > 0


class Order(TimeStamped):
    class Status(models.TextChoices):
        FULFILLED = "fulfilled", "Sent to the warehouse"
        CANCELLED = "cancelled", "Cancelled"

    number = models.CharField(max_length=20, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="shop_orders",
    )
    email = models.EmailField()
    status = models.CharField(max_length=20, choices=Status.choices)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    warehouse_ref = models.CharField(max_length=64, blank=True)
    processing_ms = models.PositiveIntegerField(default=0)
    # The OpenTelemetry trace of the request that placed the order ("" untraced).
    trace_id = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(total__gte=0), name="order_total_gte_0"
            )
        ]

    def __str__(self) -> str:
        return self.number

    def get_absolute_url(self) -> str:
        return reverse("shop:order", kwargs={"number": self.number})

    @property
    def processing_seconds(self) -> float:
        return self.processing_ms / 1000


class OrderLine(TimeStamped):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    sku = models.CharField(max_length=32)
    name = models.CharField(max_length=120)
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)
    quantity = models.PositiveIntegerField()

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quantity__gt=0), name="orderline_qty_gt_0"
            ),
            models.UniqueConstraint(
                fields=["order", "product"], name="orderline_unique_product"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.name}"

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity


class StockTransfer(TimeStamped):
    """Stock handed to (units > 0) or back from (units < 0) another service.

    The orders service takes the flash-sale allocation this way over the internal API.
    One row per transfer_id, ever: a retried transfer is answered from this row.
    """

    transfer_id = models.CharField(max_length=64)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    sku = models.CharField(max_length=32)
    units = models.IntegerField()
    stock_after = models.IntegerField()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["transfer_id"], name="stocktransfer_unique_transfer_id"
            ),
            models.CheckConstraint(
                condition=~models.Q(units=0), name="stocktransfer_units_not_0"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.transfer_id}: {self.units:+d} × {self.sku}"
