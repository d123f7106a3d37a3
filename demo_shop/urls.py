from __future__ import annotations

from django.urls import path, re_path

from demo_shop.api import api, unknown_path

urlpatterns = [
    path("api/", api.urls),
    # Tried after every operation: whatever else is asked for under api/ is a JSON 404.
    re_path(r"^api/(?P<path>.*)$", unknown_path),
]
