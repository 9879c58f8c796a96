"""Load the seed catalogue (shop/catalogue.toml, read by shop/catalogue.py) into the
shop's database.

Idempotent: rows are matched by category slug and product SKU, and only rows whose
data differ are written. Stock of an existing product is the shop's live state, so it
is left alone unless --reset-stock asks for the seed figures back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from shop.catalogue import CATEGORIES, PRODUCTS
from shop.models import Category, Product


@dataclass
class Tally:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def __str__(self) -> str:
        return (
            f"{self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged"
        )


def _upsert(
    model: type[Category] | type[Product],
    lookup: dict[str, Any],
    values: dict[str, Any],
) -> str:
    """Create the row, or write only the fields that differ. Returns what happened."""
    row = model.objects.filter(**lookup).first()
    if row is None:
        model.objects.create(**lookup, **values)
        return "created"
    changed = [name for name, value in values.items() if getattr(row, name) != value]
    if not changed:
        return "unchanged"
    for name in changed:
        setattr(row, name, values[name])
    row.save(update_fields=[*changed, "updated_at"])
    return "updated"


class Command(BaseCommand):
    help = "Create or update the seed categories and products (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset-stock",
            action="store_true",
            help="Also put existing products' stock back to the seed figures.",
        )

    def handle(self, *args: object, **options: Any) -> None:
        reset_stock = bool(options["reset_stock"])
        categories, products = Tally(), Tally()
        with transaction.atomic():
            for seed in CATEGORIES:
                outcome = _upsert(
                    Category,
                    {"slug": seed.slug},
                    {
                        "name": seed.name,
                        "description": seed.description,
                        "position": seed.position,
                    },
                )
                setattr(categories, outcome, getattr(categories, outcome) + 1)
            by_slug = {c.slug: c for c in Category.objects.all()}
            for product in PRODUCTS:
                values: dict[str, Any] = {
                    "category": by_slug[product.category],
                    "name": product.name,
                    "slug": product.slug,
                    "price": product.price,
                    "description": product.description,
                    "image": product.image,
                    "featured": product.featured,
                }
                exists = Product.objects.filter(sku=product.sku).exists()
                if reset_stock or not exists:
                    values["stock"] = product.stock
                outcome = _upsert(Product, {"sku": product.sku}, values)
                setattr(products, outcome, getattr(products, outcome) + 1)
        self.stdout.write(f"categories: {categories}")
        self.stdout.write(f"products: {products}")
