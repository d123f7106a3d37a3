"""Demo accounts for ``make run``: one per staff role, so a new user can log in at once."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from access.roles import SUPERVISOR, SUPPORT_AGENT

DEMO_PASSWORD = "actiondesk-demo"  # noqa: S105  (printed by `make run`; refused outside DEBUG)


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: str
    created: bool


def demo_accounts_ensure() -> list[DemoAccount]:
    """Create the demo supervisor (a superuser) and support agent when missing; an existing
    account is left as it is, its password included."""
    user_model = get_user_model()
    accounts = []
    for username, role, superuser in (
        ("supervisor", SUPERVISOR, True),
        ("agent", SUPPORT_AGENT, False),
    ):
        user, created = user_model.objects.get_or_create(
            username=username,
            defaults={
                "is_staff": True,
                "is_superuser": superuser,
                "email": f"{username}@demo.test",
            },
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
            user.groups.add(Group.objects.get(name=role))
        accounts.append(DemoAccount(username=username, role=role, created=created))
    return accounts
