"""Factories for the shop's catalogue rows."""

from __future__ import annotations

from decimal import Decimal

import factory

from shop.models import Category, Product


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Category {n}")
    slug = factory.Sequence(lambda n: f"category-{n}")
    description = "Things anglers need."
    position = factory.Sequence(lambda n: n)


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    category = factory.SubFactory(CategoryFactory)
    name = factory.Sequence(lambda n: f"Test Lure {n}")
    slug = factory.Sequence(lambda n: f"test-lure-{n}")
    sku = factory.Sequence(lambda n: f"TEST-{n:05d}")
    price = Decimal("9.99")
    description = "A lure made for tests: it never snags and always catches."
    stock = 50
    image = "shop/img/logo.svg"
    featured = False
