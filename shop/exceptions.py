"""Domain errors of the legacy shop. Views map each one to a precise HTTP answer."""

from __future__ import annotations


class ShopError(Exception):
    """Base class: a request the shop understood but cannot carry out."""

    status_code = 400
    # The machine-readable name of the error in the internal JSON API.
    code = "invalid_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidQuantity(ShopError):
    status_code = 400


class ProductNotFound(ShopError):
    status_code = 404
    code = "not_found"


class EmptyBasket(ShopError):
    status_code = 400


class OutOfStock(ShopError):
    status_code = 409

    def __init__(self, message: str, *, sku: str, available: int) -> None:
        super().__init__(message)
        self.sku = sku
        self.available = available


class WarehouseUnavailable(ShopError):
    """The warehouse refused (flooded) or did not answer in time: nothing ordered."""

    status_code = 503

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TransferConflict(ShopError):
    """The transfer_id was already used for another SKU or number of units."""

    status_code = 409
    code = "transfer_conflict"


class InsufficientStock(ShopError):
    """Taking that many units would leave the product below zero stock."""

    status_code = 409
    code = "insufficient_stock"
