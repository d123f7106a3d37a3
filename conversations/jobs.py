"""Periodic conversation work, run by ``manage.py run_scheduler`` (config/scheduler.py)."""

from __future__ import annotations

from config.scheduler import periodic
from conversations.interrupts import interrupts_expire_due
from conversations.recovery import pending_work_process
from conversations.retention import messages_retention_apply


@periodic(name="pending_work", every_seconds=60)
def pending_work() -> dict[str, int]:
    """What a restart left: approved calls that never ran, dead turns, waiting messages."""
    return pending_work_process()


@periodic(name="interrupts_expire", every_seconds=15)
def interrupts_expire() -> int:
    """Overdue approvals expire within seconds, not only when someone reads them."""
    return interrupts_expire_due()


@periodic(name="message_retention", every_seconds=3600)
def message_retention() -> dict[str, int]:
    """Text past MESSAGE_RETENTION_DAYS is masked (conversations.retention); off at 0."""
    return messages_retention_apply()
