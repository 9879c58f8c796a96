from django.apps import AppConfig


class WarehouseConfig(AppConfig):
    name = "fulfillment_queue.warehouse"
    label = "warehouse"
    verbose_name = "Warehouse (capacity-limited fulfillment)"
