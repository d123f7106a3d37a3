from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand

from access.roles import roles_sync


class Command(BaseCommand):
    help = "Re-apply the role groups' permissions (support_agent, supervisor, viewer)."

    def handle(self, *args: Any, **options: Any) -> None:
        for role, count in roles_sync(apps=apps).items():
            self.stdout.write(f"{role}: {count} permissions")
