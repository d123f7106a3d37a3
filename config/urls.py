from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from config.api import api
from config.metrics import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("metrics", metrics_view, name="metrics"),
    path("", include("sites.urls")),
    path("", include("conversations.urls")),
]
if settings.DEMO_SHOP_ENABLED:
    # Development and demos only: the shop's key is published (check --deploy refuses it).
    urlpatterns.insert(2, path("demo-shop/", include("demo_shop.urls")))

# A body over DATA_UPLOAD_MAX_MEMORY_SIZE outside the API (read by CSRF or a form) answers 413.
handler400 = "config.views.bad_request"
