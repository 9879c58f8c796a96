from django.apps import AppConfig


class WarehouseConfig(AppConfig):
    name = "warehouse"
    label = "warehouse"
    verbose_name = "Warehouse (capacity-limited fulfillment)"
