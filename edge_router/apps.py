"""A Django app only so `python manage.py edge` exists; the edge is not Django."""

from django.apps import AppConfig


class EdgeRouterConfig(AppConfig):
    name = "edge_router"
    verbose_name = "Edge router (management command only)"
