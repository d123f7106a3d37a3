from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib.auth.models import Group

from access.roles import ROLES, roles_sync


def _perms(role: str) -> set[str]:
    group = Group.objects.get(name=role)
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}


@pytest.mark.django_db
def test_migration_created_the_three_roles() -> None:
    assert set(Group.objects.values_list("name", flat=True)) >= set(ROLES)


@pytest.mark.django_db
def test_role_permissions() -> None:
    supervisor, agent, viewer = _perms("supervisor"), _perms("support_agent"), _perms("viewer")
    assert {"access.add_apikey", "access.change_apikey", "auth.view_user"} <= supervisor
    assert "access.add_apikey" not in agent and "access.view_apikey" not in viewer
    # The analytics dashboard is for supervisors and viewers (docs/analytics.md).
    assert "analytics.view_dashboard" in supervisor and "analytics.view_dashboard" in viewer
    assert "analytics.view_dashboard" not in agent and "analytics.view_event" in agent
    # The viewer role is read-only everywhere (it grows as apps gain models).
    assert all(p.split(".")[1].startswith("view_") for p in viewer)
    assert "django_tasks_database.view_dbtaskresult" in supervisor


@pytest.mark.django_db
def test_sync_is_idempotent_and_restores_removed_permissions() -> None:
    group = Group.objects.get(name="supervisor")
    before = _perms("supervisor")
    group.permissions.clear()
    roles_sync(apps=apps)
    roles_sync(apps=apps)
    assert _perms("supervisor") == before
