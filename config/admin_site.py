from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import URLPattern, URLResolver


class ActiondeskAdminSite(admin.AdminSite):
    site_header = "Actiondesk"
    site_title = "Actiondesk"
    index_title = "Support operations"

    def get_urls(self) -> list[URLResolver | URLPattern]:
        from analytics.views import admin_urls as analytics_urls
        from escalations.views import admin_urls

        # Before the admin's own patterns, whose catch-all would take these paths.
        return [*admin_urls(self), *analytics_urls(self), *super().get_urls()]

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[Any]:
        from analytics.views import dashboard_index_entry
        from escalations.views import queue_index_entry

        app_list = queue_index_entry(request, super().get_app_list(request, app_label))
        return dashboard_index_entry(request, app_list)
