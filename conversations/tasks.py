"""Jobs that continue conversations outside a chat socket: after a staff or API decision, and
after a restart (``manage.py process_pending``)."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.tasks import task


@task()
def continue_conversation(conversation_id: str) -> None:
    from conversations.turns.engine import process_conversation

    async_to_sync(process_conversation)(conversation_id)
