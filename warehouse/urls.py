"""The warehouse's endpoints. Anything else is a JSON 404."""

from __future__ import annotations

from django.urls import path

from warehouse import views

urlpatterns = [
    path("fulfilments/", views.fulfilments_api, name="fulfilments"),
    path("stats/", views.stats_detail_api, name="stats-detail"),
    path("stats/reset", views.stats_reset_api, name="stats-reset"),
    path("healthz", views.healthz_api, name="healthz"),
]

handler400 = "warehouse.views.bad_request"
handler403 = "warehouse.views.permission_denied"
handler404 = "warehouse.views.not_found"
handler500 = "warehouse.views.server_error"
