from django.apps import AppConfig


class OrdersApiConfig(AppConfig):
    name = "orders_api"
    label = "orders_api"
    verbose_name = "Orders (the flash-sale order path)"
