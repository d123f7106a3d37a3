from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class ActiondeskAdminConfig(AdminConfig):
    """The admin, branded Actiondesk; also where the project-wide system checks register."""

    default_site = "config.admin_site.ActiondeskAdminSite"

    def ready(self) -> None:
        super().ready()
        from config import checks  # noqa: F401  (registers the checks)
