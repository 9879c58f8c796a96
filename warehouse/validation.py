"""Parsing and strict validation of a fulfilment request body.

The warehouse accepts exactly `{"order_ref": str, "lines": [{"sku": str,
"quantity": int}, ...]}`: no other keys, no duplicate keys, no coercion (a quantity of
"2", 2.0 or true is refused). Nothing here touches the database.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from warehouse.exceptions import InvalidRequest, MalformedJson

ORDER_REF_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}")
MAX_LINES = 50
MAX_SKU_LENGTH = 32
MIN_QUANTITY = 1
MAX_QUANTITY = 1000

_REQUEST_KEYS = frozenset({"order_ref", "lines"})
_LINE_KEYS = frozenset({"sku", "quantity"})


@dataclass(frozen=True)
class FulfillmentLine:
    sku: str
    quantity: int


@dataclass(frozen=True)
class FulfillmentRequest:
    order_ref: str
    lines: tuple[FulfillmentLine, ...]


class _DuplicateKey(ValueError):
    pass


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def json_parse(body: bytes) -> Any:
    """Decode a JSON document; anything undecodable is MalformedJson."""
    try:
        return json.loads(body, object_pairs_hook=_object_without_duplicates)
    except _DuplicateKey as exc:
        raise MalformedJson(f"The JSON body repeats the key {exc.args[0]!r}.") from None
    except (ValueError, RecursionError):
        # ValueError covers JSONDecodeError, invalid UTF-8 and oversized integers.
        raise MalformedJson("The body is not valid JSON.") from None


def _keys_check(obj: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise InvalidRequest(f"Unknown key(s) in {where}: {', '.join(unknown)}.")
    missing = sorted(allowed - set(obj))
    if missing:
        raise InvalidRequest(f"Missing key(s) in {where}: {', '.join(missing)}.")


def _line_parse(raw: Any, index: int) -> FulfillmentLine:
    where = f"lines[{index}]"
    if not isinstance(raw, dict):
        raise InvalidRequest(f"{where} must be an object.")
    _keys_check(raw, _LINE_KEYS, where)
    sku = raw["sku"]
    if not isinstance(sku, str) or not 1 <= len(sku) <= MAX_SKU_LENGTH:
        raise InvalidRequest(
            f"{where}.sku must be a string of 1 to {MAX_SKU_LENGTH} characters."
        )
    quantity = raw["quantity"]
    # bool is an int in Python; true is not a quantity.
    if (
        isinstance(quantity, bool)
        or not isinstance(quantity, int)
        or not MIN_QUANTITY <= quantity <= MAX_QUANTITY
    ):
        raise InvalidRequest(
            f"{where}.quantity must be a whole number from {MIN_QUANTITY} "
            f"to {MAX_QUANTITY}."
        )
    return FulfillmentLine(sku=sku, quantity=quantity)


def fulfillment_request_parse(*, body: bytes) -> FulfillmentRequest:
    """The validated request, or MalformedJson / InvalidRequest saying what is wrong."""
    data = json_parse(body)
    if not isinstance(data, dict):
        raise InvalidRequest("The body must be a JSON object.")
    _keys_check(data, _REQUEST_KEYS, "the request")
    order_ref = data["order_ref"]
    if not isinstance(order_ref, str) or not ORDER_REF_PATTERN.fullmatch(order_ref):
        raise InvalidRequest(
            "order_ref must be a string of 1 to 64 characters from A-Z a-z 0-9 . _ : -"
        )
    lines = data["lines"]
    if not isinstance(lines, list) or not 1 <= len(lines) <= MAX_LINES:
        raise InvalidRequest(f"lines must be a list of 1 to {MAX_LINES} objects.")
    return FulfillmentRequest(
        order_ref=order_ref,
        lines=tuple(_line_parse(raw, i) for i, raw in enumerate(lines)),
    )
