"""Back office: the catalogue is editable, orders are a read-only record."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from shop.models import Category, Order, OrderLine, Product


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "position"]
    list_editable = ["position"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "sku", "category", "price", "stock", "featured"]
    list_filter = ["category", "featured"]
    list_select_related = ["category"]
    search_fields = ["name", "sku", "description"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["created_at", "updated_at"]


# Shown and read-only: a placed order's lines are history.
LINE_FIELDS = ("sku", "name", "unit_price", "quantity")


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    fields = readonly_fields = LINE_FIELDS
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["number", "email", "status", "total", "processing_ms", "created_at"]
    list_filter = ["status"]
    search_fields = ["number", "email", "warehouse_ref"]
    date_hierarchy = "created_at"
    inlines = [OrderLineInline]

    # An order is what the warehouse was told: nobody edits it after the fact.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
