"""Fixtures of the shop's page tests: the seeded catalogue on real PostgreSQL."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.test import Client

from shop.models import Product
from tests.shop.factories import CategoryFactory, ProductFactory

__all__ = ["CategoryFactory", "ProductFactory"]


@pytest.fixture
def catalogue(db: None) -> None:
    """The seed catalogue, loaded the way an operator loads it."""
    call_command("seed_catalogue", stdout=io.StringIO())


@pytest.fixture
def muskie(catalogue: None) -> Product:
    return Product.objects.get(sku="ROD-MUSKIE")


@pytest.fixture
def tourney(catalogue: None) -> Product:
    return Product.objects.get(sku="ROD-TOURNEY")


@pytest.fixture
def crankbait(catalogue: None) -> Product:
    return Product.objects.get(sku="HB-SQBILL")


@pytest.fixture
def csrf_client() -> Client:
    """A client that, like a browser hitting the real site, must send a CSRF token."""
    return Client(enforce_csrf_checks=True)
