from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class ActiondeskAdminConfig(AdminConfig):
    """The admin, branded Actiondesk; also where the project-wide system checks register."""

    default_site = "config.admin_site.ActiondeskAdminSite"

    def ready(self) -> None:
        super().ready()
        from django.db.backends.signals import connection_created

        from config import checks  # noqa: F401  (registers the checks)
        from config.chaos import install_db_wrapper

        connection_created.connect(install_db_wrapper, dispatch_uid="chaos_db_wrapper")
