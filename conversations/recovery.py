"""Picking up after a crash or restart (SPEC §13): nothing here relies on a timer in the web
process; ``manage.py process_pending`` runs it (at start-up and from cron), and a customer
reconnecting also triggers the conversation's work.

An approved call that was claimed but never recorded may or may not have reached the upstream.
When the operation takes an idempotency key it is sent again with the *same* key, so the
upstream does it at most once; without one it is marked failed with an unknown outcome and
handed to a human rather than risk doing it twice.
"""

from __future__ import annotations

from datetime import timedelta

import structlog
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from conversations.interrupts import interrupts_expire_due
from conversations.models import Conversation, Interrupt, Message, ToolCall, Turn
from conversations.services import AI_SILENT_STATES, handoff_request, message_append
from conversations.tools import supports_idempotency_key

logger = structlog.get_logger(__name__)


def stale_after() -> timedelta:
    # Well past the longest a call can take (its deadline plus three retries with backoff).
    return timedelta(seconds=settings.TOOL_TIMEOUT_SECONDS * 4 + 60)


def stuck_calls_recover() -> int:
    cutoff = timezone.now() - stale_after()
    stuck = ToolCall.objects.filter(
        status=ToolCall.Status.RUNNING, started_at__lt=cutoff
    ).select_related("operation")
    recovered = 0
    for call in stuck:
        approved = Interrupt.objects.filter(
            tool_call=call, status=Interrupt.Status.APPROVED
        ).exists()
        if approved and call.operation is not None and supports_idempotency_key(call.operation):
            # Back to pending: the runtime runs it again with the same idempotency key.
            changed = ToolCall.objects.filter(pk=call.pk, status=ToolCall.Status.RUNNING).update(
                status=ToolCall.Status.PENDING, started_at=None
            )
            logger.warning("tool_call_requeued", tool_call_id=call.pk, key_reused=True)
        else:
            changed = ToolCall.objects.filter(pk=call.pk, status=ToolCall.Status.RUNNING).update(
                status=ToolCall.Status.FAILED,
                error_kind="unknown",
                error_message="The server stopped during this call; its outcome is unknown.",
                finished_at=timezone.now(),
            )
            if changed and approved:
                message_append(
                    conversation_id=call.conversation_id,
                    role=Message.Role.SYSTEM,
                    content="We couldn't confirm whether your request went through, so a "
                    "member of our team will check it for you.",
                )
                handoff_request(
                    conversation_id=call.conversation_id,
                    trigger="unknown_outcome",
                    reason=f"{call.operation_name} was interrupted by a restart.",
                )
            logger.warning("tool_call_outcome_unknown", tool_call_id=call.pk)
        recovered += changed
    return recovered


def stuck_turns_fail() -> int:
    """Turns left running by a dead process: closed as failed, and the customer told."""
    cutoff = timezone.now() - timedelta(seconds=settings.TURN_TIMEOUT_SECONDS + 60)
    count = 0
    for turn in Turn.objects.filter(status=Turn.Status.RUNNING, started_at__lt=cutoff):
        if Turn.objects.filter(pk=turn.pk, status=Turn.Status.RUNNING).update(
            status=Turn.Status.FAILED, error_code="interrupted", finished_at=timezone.now()
        ):
            message_append(
                conversation_id=turn.conversation_id,
                role=Message.Role.SYSTEM,
                content="Sorry, our assistant was interrupted while answering. Your message is "
                "saved; please send it again or ask for a human.",
                turn=turn,
            )
            count += 1
    return count


def conversations_with_work() -> list[str]:
    decided = Interrupt.objects.filter(tool_call__status=ToolCall.Status.PENDING).exclude(
        status=Interrupt.Status.PENDING
    )
    waiting = Message.objects.filter(
        role=Message.Role.USER, kind=Message.Kind.MESSAGE, turn_started__isnull=True
    ).exclude(conversation__state__in=AI_SILENT_STATES)
    ids = set(decided.values_list("conversation_id", flat=True))
    ids |= set(waiting.values_list("conversation_id", flat=True))
    ids |= set(
        Conversation.objects.filter(
            Q(state=Conversation.State.AWAITING_APPROVAL)
            & ~Q(interrupts__status=Interrupt.Status.PENDING)
        ).values_list("id", flat=True)
    )
    return sorted(str(i) for i in ids)


def pending_work_process() -> dict[str, int]:
    from asgiref.sync import async_to_sync

    from conversations.turns.engine import process_conversation

    expired = interrupts_expire_due()
    requeued = stuck_calls_recover()
    failed_turns = stuck_turns_fail()
    conversations = conversations_with_work()
    for conversation_id in conversations:
        async_to_sync(process_conversation)(conversation_id)
    summary = {
        "expired": expired,
        "recovered_calls": requeued,
        "failed_turns": failed_turns,
        "conversations": len(conversations),
    }
    logger.info("pending_work_processed", **summary)
    return summary
