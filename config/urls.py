from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from config.api import api
from config.metrics import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("demo-shop/", include("demo_shop.urls")),
    path("metrics", metrics_view, name="metrics"),
    path("", include("conversations.urls")),
]
