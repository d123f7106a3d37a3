"""Staff roles (SPEC §1) as Django groups, and the permissions each holds.

A permission pattern is ``app_label.codename`` where the codename may use shell wildcards.
:func:`roles_sync` applies the table; migrations call it (through :func:`roles_sync_migration`)
after they create models, so a role always holds the permissions of every model that exists.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

SUPPORT_AGENT = "support_agent"
SUPERVISOR = "supervisor"
VIEWER = "viewer"

PRODUCT_APPS = ("access", "conversations", "analytics", "escalations", "openapi_import")

ROLES: dict[str, tuple[str, ...]] = {
    SUPERVISOR: (
        "access.*",
        "conversations.*",
        "analytics.*",
        "escalations.*",
        "openapi_import.*",
        "auth.view_user",
        "auth.view_group",
        "django_tasks_database.view_*",
    ),
    SUPPORT_AGENT: (
        "conversations.view_*",
        "conversations.decide_interrupt",
        "escalations.*",
        # The event record, not the analytics dashboard (analytics.view_dashboard): that is for
        # supervisors and viewers.
        "analytics.view_event",
        "openapi_import.view_*",
    ),
    VIEWER: tuple(f"{app}.view_*" for app in PRODUCT_APPS if app != "access"),
}


def _matches(patterns: tuple[str, ...], app_label: str, codename: str) -> bool:
    for pattern in patterns:
        app_pattern, _, code_pattern = pattern.partition(".")
        if fnmatchcase(app_label, app_pattern) and fnmatchcase(codename, code_pattern):
            return True
    return False


def roles_sync(*, apps: Any) -> dict[str, int]:
    """Create the role groups and set each one's permissions from :data:`ROLES`.

    ``apps`` is a migration's historical registry or ``django.apps.apps``. Returns the number of
    permissions per role.
    """
    from django.apps import apps as global_apps
    from django.contrib.auth.management import create_permissions

    # Permissions are normally made after migrate; make them now so the groups can hold them.
    # create_permissions takes the real app configs and reads models from ``apps``.
    for app_config in global_apps.get_app_configs():
        try:
            apps.get_app_config(app_config.label)
        except LookupError:
            continue  # the app has no migration state yet
        create_permissions(app_config, apps=apps, verbosity=0)

    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    permissions = list(permission_model.objects.select_related("content_type"))
    counts: dict[str, int] = {}
    for role, patterns in ROLES.items():
        group, _ = group_model.objects.get_or_create(name=role)
        chosen = [
            p for p in permissions if _matches(patterns, p.content_type.app_label, p.codename)
        ]
        group.permissions.set(chosen)
        counts[role] = len(chosen)
    return counts


def roles_sync_migration(apps: Any, schema_editor: Any) -> None:
    """``RunPython`` entry point; safe to run again in every migration that adds models."""
    roles_sync(apps=apps)
