"""The JSON order's body, checked by hand: the accept's hot path runs no serializer.

The same rules and the same 400 as DRF's (`fields`: each field's messages), for a
fraction of the cost; apis.OrderCreateApi.InputSerializer still documents them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from common.errors import InvalidRequest

REQUIRED = "This field is required."


@dataclass(frozen=True)
class OrderInput:
    sku: str
    quantity: int
    email: str


def _sku(value: Any) -> str | None:
    choices = settings.SALE_PRODUCTS.values()
    if isinstance(value, str) and value in choices:
        return None
    return f'"{value}" is not a valid choice.'


def _quantity(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return "A valid integer is required."
    if value < 1:
        return "Ensure this value is greater than or equal to 1."
    maximum = settings.MAX_QUANTITY_PER_ORDER
    if value > maximum:
        return f"Ensure this value is less than or equal to {maximum}."
    return None


def _email(value: Any) -> str | None:
    if not isinstance(value, str):
        return "Not a valid string."
    if len(value) > 254:
        return "Ensure this field has no more than 254 characters."
    try:
        validate_email(value)
    except ValidationError:
        return "Enter a valid email address."
    return None


CHECKS = {"sku": _sku, "quantity": _quantity, "email": _email}


def order_input_parse(data: Any) -> OrderInput:
    """The body's order, or InvalidRequest (400) naming every faulty field."""
    if not isinstance(data, dict):
        raise InvalidRequest(
            "Invalid data. Expected a dictionary.",
            fields={"non_field_errors": ["Invalid data. Expected a dictionary."]},
        )
    fields: dict[str, list[str]] = {}
    for name, check in CHECKS.items():
        problem = REQUIRED if name not in data else check(data[name])
        if problem:
            fields[name] = [problem]
    if fields:
        detail = " ".join(f"{name}: {' '.join(msgs)}" for name, msgs in fields.items())
        raise InvalidRequest(detail, fields=fields)
    return OrderInput(sku=data["sku"], quantity=data["quantity"], email=data["email"])
