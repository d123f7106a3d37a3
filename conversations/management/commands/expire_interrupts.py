from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from conversations.interrupts import interrupts_expire_due


class Command(BaseCommand):
    help = "Mark overdue interrupts expired (run from cron; reads also expire them lazily)."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"Expired {interrupts_expire_due()} interrupt(s).")
