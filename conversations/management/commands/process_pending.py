from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from conversations.recovery import pending_work_process


class Command(BaseCommand):
    help = (
        "Finish work a restart interrupted: expire overdue approvals, re-send approved calls "
        "(same idempotency key), close dead turns, run decided approvals and waiting messages."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        summary = pending_work_process()
        self.stdout.write(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in summary.items()))
