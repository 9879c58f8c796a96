"""Domain errors of the legacy shop. Views map each one to a precise HTTP answer:
a page for a visitor, the one JSON error body (common/errors.py) for the internal API.
"""

from __future__ import annotations

from common.errors import ApplicationError


class ShopError(ApplicationError):
    """Base class: a request the shop understood but cannot carry out."""

    status_code = 400
    code = "invalid_request"


class InvalidQuantity(ShopError):
    status_code = 400


class ProductNotFound(ShopError):
    status_code = 404
    code = "not_found"


class EmptyBasket(ShopError):
    status_code = 400


class OutOfStock(ShopError):
    status_code = 409

    def __init__(self, detail: str, *, sku: str, available: int) -> None:
        super().__init__(detail, sku=sku, available=available)
        self.sku = sku
        self.available = available


class WarehouseUnavailable(ShopError):
    """The warehouse refused (flooded) or did not answer in time: nothing ordered."""

    status_code = 503
    retry_after = 1


class TransferConflict(ShopError):
    """The transfer_id was already used for another SKU or number of units."""

    status_code = 409
    code = "transfer_conflict"


class InsufficientStock(ShopError):
    """Taking that many units would leave the product below zero stock."""

    status_code = 409
    code = "insufficient_stock"


class OnSaleElsewhere(ShopError):
    """The orders service runs a sale of this product: buy it there, not here."""

    status_code = 409
    code = "on_sale_elsewhere"

    def __init__(self, *, name: str, sale_url: str) -> None:
        super().__init__(
            f"The {name} is in a flash sale: buy it at {sale_url}", sale_url=sale_url
        )
        self.sale_url = sale_url
