"""The shop's seed catalogue: the workshop's lee.fishing range, and more.

The data is shop/catalogue.toml; this module reads it once, into `CATEGORIES` and
`PRODUCTS`, which `seed_catalogue` loads. Prices are strings turned into Decimal
here, never floats. The Muskie Casting Rod is the flash-sale item: little stock,
lots of demand.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

CATALOGUE_FILE = Path(__file__).resolve().parent / "catalogue.toml"
# The product the sale is about; the edge router later sends its URLs elsewhere.
FLASH_SALE_CATEGORY = "rods"
FLASH_SALE_SLUG = "muskie-casting-rod"


@dataclass(frozen=True)
class CategorySeed:
    name: str
    slug: str
    description: str
    position: int


@dataclass(frozen=True)
class ProductSeed:
    category: str
    name: str
    slug: str
    sku: str
    price: Decimal
    stock: int
    description: str
    featured: bool = False

    @property
    def image(self) -> str:
        return f"shop/img/{self.slug}.svg"


def _product(spec: dict[str, Any]) -> ProductSeed:
    """A product of the file: its price a Decimal, its description on one line."""
    return ProductSeed(
        **{
            **spec,
            "price": Decimal(spec["price"]),
            "description": " ".join(spec["description"].split()),
        }
    )


def catalogue_load(
    path: Path = CATALOGUE_FILE,
) -> tuple[tuple[CategorySeed, ...], tuple[ProductSeed, ...]]:
    """The categories and products of a catalogue file, in the file's order."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    categories = tuple(CategorySeed(**spec) for spec in data["categories"])
    products = tuple(_product(spec) for spec in data["products"])
    unknown = {p.category for p in products} - {c.slug for c in categories}
    if unknown:
        raise ValueError(f"{path}: products in unknown categories {sorted(unknown)}")
    return categories, products


CATEGORIES, PRODUCTS = catalogue_load()
