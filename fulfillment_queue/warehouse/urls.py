"""The warehouse's endpoints. Anything else is a JSON 404."""

from __future__ import annotations

from django.urls import path

from fulfillment_queue.warehouse import views

urlpatterns = [
    path("fulfilments/", views.fulfilments_api, name="fulfilments"),
    path("stats/", views.stats_detail_api, name="stats-detail"),
    path("stats/reset", views.stats_reset_api, name="stats-reset"),
    path("healthz", views.healthz_api, name="healthz"),
]

handler400 = "fulfillment_queue.warehouse.views.bad_request"
handler403 = "fulfillment_queue.warehouse.views.permission_denied"
handler404 = "fulfillment_queue.warehouse.views.not_found"
handler500 = "fulfillment_queue.warehouse.views.server_error"
