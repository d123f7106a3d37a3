from __future__ import annotations

from django.contrib import admin


class ActiondeskAdminSite(admin.AdminSite):
    site_header = "Actiondesk"
    site_title = "Actiondesk"
    index_title = "Support operations"
