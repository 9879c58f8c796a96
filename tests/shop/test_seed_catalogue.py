"""The seed command loads the workshop's catalogue; running it again changes nothing."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.management import call_command

from shop.catalogue import CATEGORIES, PRODUCTS
from shop.models import Category, Product

pytestmark = pytest.mark.django_db

NAMED = {
    "muskie-casting-rod": ("Muskie Casting Rod", "rods", Decimal("149.99")),
    "tourney-casting-rod": ("Tourney Casting Rod", "rods", Decimal("49.99")),
    "spinning-reel": ("Spinning Reel", "reels", Decimal("29.99")),
    "baitcasting-reel": ("Baitcasting Reel", "reels", Decimal("299.99")),
    "square-bill-silent-crankbait": (
        "Square-Bill Silent Crankbait",
        "hard-baits",
        Decimal("6.39"),
    ),
}


def seed(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_catalogue", *args, stdout=out)
    return out.getvalue()


def snapshot() -> dict[str, tuple]:
    return {
        p.sku: (p.name, p.price, p.stock, p.updated_at)
        for p in Product.objects.select_related("category")
    }


def test_seed_creates_the_seven_categories_and_the_products() -> None:
    output = seed()

    assert list(Category.objects.values_list("slug", flat=True)) == [
        "rods",
        "reels",
        "hard-baits",
        "soft-baits",
        "swimbaits",
        "tackle-storage",
        "waders",
    ]
    assert Product.objects.count() == len(PRODUCTS) >= 24
    for category in Category.objects.all():
        assert category.products.count() >= 3, category.slug
    assert "categories: 7 created" in output
    assert f"products: {len(PRODUCTS)} created" in output


@pytest.mark.parametrize(("slug", "expected"), NAMED.items())
def test_seed_has_the_workshops_products_at_their_prices(
    slug: str, expected: tuple[str, str, Decimal]
) -> None:
    seed()

    product = Product.objects.select_related("category").get(slug=slug)
    name, category, price = expected
    assert (product.name, product.category.slug) == (name, category)
    assert isinstance(product.price, Decimal)
    assert product.price == price
    assert product.image == f"shop/img/{slug}.svg"


def test_the_flash_sale_rod_has_little_stock_and_the_everyday_rod_plenty() -> None:
    seed()

    muskie = Product.objects.get(sku="ROD-MUSKIE")
    tourney = Product.objects.get(sku="ROD-TOURNEY")
    assert muskie.featured
    assert 0 < muskie.stock <= 500
    assert tourney.stock >= 10 * muskie.stock


def test_seed_data_is_decimal_and_every_product_has_a_drawing() -> None:
    from django.contrib.staticfiles import finders

    assert len(CATEGORIES) == 7
    for product in PRODUCTS:
        assert isinstance(product.price, Decimal)
        assert product.price == product.price.quantize(Decimal("0.01"))
        assert finders.find(product.image), product.image
        assert 2 <= product.description.count(". ") + 1 <= 3, product.slug


def test_a_second_run_changes_nothing() -> None:
    seed()
    before = snapshot()

    output = seed()

    assert snapshot() == before
    assert "categories: 0 created, 0 updated, 7 unchanged" in output
    assert f"products: 0 created, 0 updated, {len(PRODUCTS)} unchanged" in output


def test_a_rerun_keeps_live_stock_unless_asked_to_reset_it() -> None:
    seed()
    Product.objects.filter(sku="ROD-MUSKIE").update(stock=3)

    seed()
    assert Product.objects.get(sku="ROD-MUSKIE").stock == 3

    output = seed("--reset-stock")
    assert Product.objects.get(sku="ROD-MUSKIE").stock == 100
    assert "products: 0 created, 1 updated" in output


def test_a_rerun_repairs_edited_catalogue_text() -> None:
    seed()
    Product.objects.filter(sku="REEL-SPIN").update(price=Decimal("1.00"), name="Oops")

    output = seed()

    reel = Product.objects.get(sku="REEL-SPIN")
    assert (reel.name, reel.price) == ("Spinning Reel", Decimal("29.99"))
    assert "1 updated" in output
