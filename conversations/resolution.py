"""The resolution lifecycle (SPEC §9, docs/analytics.md): the agent marks a turn that completed
the customer's request, the chat asks "Did that solve it?", the scheduler closes idle
conversations (an unanswered check becomes an *assumed* resolution) and a customer who returns
reopens the conversation, taking a recent resolution back. Every transition is an event."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import structlog
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from analytics.models import EventType
from analytics.services import event_record
from config.errors import ApplicationError, ErrorCode
from conversations.models import Conversation, Interrupt, Message, Resolution, ToolCall, Turn
from conversations.services import conversation_transition, message_append

logger = structlog.get_logger(__name__)

State = Conversation.State

CHECK_TEXT = "Did that solve it?"
CONFIRMED_TEXT = "Great, glad that's sorted. Write again any time if you need anything else."
DECLINED_TEXT = (
    "Sorry that didn't solve it. Tell me what's still wrong and I'll try again, or ask for a "
    "person and someone from our team will take over."
)
# States the inactivity job closes: the AI holds them and nothing waits for a decision. A
# conversation waiting for staff or held by a human is the humans' to close.
CLOSABLE_STATES = (State.AI_ACTIVE, State.RESOLVED)


def turn_mark_resolving(*, turn: Turn) -> bool:
    """After a completed turn: mark it resolving when it answered from a tool result or executed
    an action (a call that succeeded), and ask the customer whether that solved it."""
    if turn.status != Turn.Status.COMPLETED or turn.error_code:
        return False
    succeeded = ToolCall.objects.filter(turn=turn, status=ToolCall.Status.SUCCEEDED)
    operations = list(succeeded.values_list("operation_name", flat=True))
    if not operations:
        return False
    now = timezone.now()
    asked = Conversation.objects.filter(pk=turn.conversation_id, state=State.AI_ACTIVE).update(
        resolution_asked_at=now
    )
    if not asked:
        return False  # a human holds it, or the turn paused: nothing for the customer to confirm
    Turn.objects.filter(pk=turn.pk).update(resolving=True)
    turn.resolving = True
    message_append(
        conversation_id=turn.conversation_id,
        kind=Message.Kind.RESOLUTION_CHECK,
        role=Message.Role.SYSTEM,
        content=CHECK_TEXT,
        turn=turn,
        payload={"frame": {"turn_id": turn.pk, "options": ["yes", "no"]}},
    )
    event_record(
        type=EventType.TURN_RESOLVING,
        conversation_id=turn.conversation_id,
        agent=turn.agent.name if turn.agent_id and turn.agent else "",
        data={"turn_id": turn.pk, "operations": operations},
    )
    return True


def resolution_answer(*, conversation_id: UUID | str, answer: str) -> Conversation:
    """The customer's answer to "Did that solve it?": ``yes`` confirms the AI's resolution,
    ``no`` asks the agent to try again (or the customer to ask for a person)."""
    if answer not in ("yes", "no"):
        raise ApplicationError(ErrorCode.INVALID_FRAME, 'answer must be "yes" or "no".')
    now = timezone.now()
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=conversation_id)
        if conversation.resolution_asked_at is None or conversation.state != State.AI_ACTIVE:
            raise ApplicationError(
                ErrorCode.NO_RESOLUTION_CHECK, "There is no question about a resolution to answer."
            )
        waited_ms = (now - conversation.resolution_asked_at).total_seconds() * 1000
        conversation.resolution_asked_at = None
        fields = ["resolution_asked_at", "updated_at"]
        if answer == "yes":
            conversation.resolution = Resolution.CONFIRMED
            conversation.resolved_at = now
            conversation.resolved_turns = conversation.turn_count
            fields += ["resolution", "resolved_at", "resolved_turns"]
        conversation.save(update_fields=fields)
        message_append(
            conversation_id=conversation.pk,
            kind=Message.Kind.RESOLUTION_ANSWERED,
            role=Message.Role.ASSISTANT,
            content=CONFIRMED_TEXT if answer == "yes" else DECLINED_TEXT,
            payload={"frame": {"answer": answer, "offer_human": answer == "no"}},
        )
        if answer == "yes":
            event_record(
                type=EventType.RESOLUTION_CONFIRMED,
                conversation_id=conversation.pk,
                latency_ms=waited_ms,
            )
            event_record(
                type=EventType.CONVERSATION_RESOLVED,
                conversation_id=conversation.pk,
                outcome=Resolution.CONFIRMED,
                data={"turns": conversation.turn_count},
            )
        else:
            event_record(
                type=EventType.RESOLUTION_DECLINED,
                conversation_id=conversation.pk,
                latency_ms=waited_ms,
            )
    logger.info("resolution_answered", conversation_id=str(conversation.pk), answer=answer)
    return conversation


def conversation_close(
    *, conversation: Conversation, reason: str, actor: User | None = None, idle: bool = False
) -> bool:
    """The one close path (the inactivity job, the API): an unanswered "Did that solve it?"
    becomes an assumed resolution (the customer left without asking for more help), pending
    approvals lapse, and open escalations are cancelled lazily. ``False`` when it was already
    closed, or, for an ``idle`` close, when it is not closable any more (someone wrote, or a
    human took it, meanwhile)."""
    now = timezone.now()
    with transaction.atomic():
        current = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if current.state == State.CLOSED:
            return False
        if idle and (
            current.state not in CLOSABLE_STATES or current.updated_at != conversation.updated_at
        ):
            return False
        assumed = current.resolution == Resolution.NONE and current.resolution_asked_at is not None
        updates: dict[str, Any] = {"closed_at": now, "resolution_asked_at": None}
        if assumed:
            updates.update(
                resolution=Resolution.ASSUMED, resolved_at=now, resolved_turns=current.turn_count
            )
        Conversation.objects.filter(pk=current.pk).update(**updates)
        conversation_transition(
            conversation=current, to_state=State.CLOSED, reason=reason, actor=actor
        )
        Interrupt.objects.filter(
            conversation_id=current.pk, status=Interrupt.Status.PENDING
        ).update(status=Interrupt.Status.EXPIRED, decided_at=now, decision_source="closed")
        message_append(
            conversation_id=current.pk,
            kind=Message.Kind.CLOSED,
            role=Message.Role.SYSTEM,
            content=(
                "This conversation was closed after a while without activity. Write again "
                "any time to pick it up."
                if idle
                else "This conversation is closed. Write again any time to pick it up."
            ),
        )
        resolution = Resolution.ASSUMED if assumed else current.resolution
        if assumed:
            event_record(
                type=EventType.CONVERSATION_RESOLVED,
                conversation_id=current.pk,
                outcome=Resolution.ASSUMED,
                data={"turns": current.turn_count},
            )
        event_record(
            type=EventType.CONVERSATION_CLOSED,
            conversation_id=current.pk,
            outcome="escalated" if current.escalated_at else (resolution or "unresolved"),
            latency_ms=(now - current.created_at).total_seconds() * 1000,
            data={"reason": reason},
        )
    logger.info("conversation_closed", conversation_id=str(current.pk), assumed=assumed)
    return True


def conversations_close_idle(*, now: datetime | None = None, limit: int = 500) -> int:
    """The inactivity job: close conversations without a new timeline item for
    ``CONVERSATION_IDLE_CLOSE_MINUTES``. Returns how many closed."""
    now = now or timezone.now()
    cutoff = now - timedelta(minutes=settings.CONVERSATION_IDLE_CLOSE_MINUTES)
    idle = Conversation.objects.filter(state__in=CLOSABLE_STATES, updated_at__lt=cutoff).order_by(
        "updated_at"
    )[:limit]
    minutes = settings.CONVERSATION_IDLE_CLOSE_MINUTES
    return sum(
        conversation_close(conversation=conversation, reason=f"idle for {minutes} min", idle=True)
        for conversation in idle
    )


def conversation_reopen(*, conversation_id: UUID | str) -> Conversation:
    """A customer wrote to a closed conversation: it is the AI's again. A resolution younger
    than ``ANALYTICS_DURABLE_DAYS`` is taken back (the customer needed more help); an older one
    was durable and stays."""
    now = timezone.now()
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=conversation_id)
        if conversation.state != State.CLOSED:
            return conversation
        revoked = ""
        updates: dict[str, Any] = {"reopened_at": now}
        durable_since = now - timedelta(days=settings.ANALYTICS_DURABLE_DAYS)
        if conversation.resolution and (
            conversation.resolved_at is None or conversation.resolved_at > durable_since
        ):
            revoked = conversation.resolution
            updates.update(resolution=Resolution.NONE, resolved_at=None, resolved_turns=None)
        Conversation.objects.filter(pk=conversation.pk).update(**updates)
        conversation_transition(
            conversation=conversation, to_state=State.AI_ACTIVE, reason="customer returned"
        )
        event_record(
            type=EventType.CONVERSATION_REOPENED,
            conversation_id=conversation.pk,
            outcome=revoked or "none",
            latency_ms=(now - conversation.closed_at).total_seconds() * 1000
            if conversation.closed_at
            else None,
            data={"revoked": revoked},
        )
    logger.info("conversation_reopened", conversation_id=str(conversation.pk), revoked=revoked)
    return conversation
