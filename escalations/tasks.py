"""Jobs queued after an escalation commits: the model's assessment for the packet and the
webhook notification. Immediate in development, ``manage.py db_worker`` in production."""

from __future__ import annotations

from django.tasks import task


@task()
def assess_escalation(escalation_id: int) -> str:
    from escalations.services import escalation_assess

    return str(escalation_assess(escalation_id=escalation_id).get("status", ""))


@task()
def notify_escalation(escalation_id: int) -> str:
    from escalations.notifications import escalation_notify

    return escalation_notify(escalation_id=escalation_id)
