"""Reads for the escalations app: the queue, one escalation, the facts behind a handoff packet,
and who may do what."""

from __future__ import annotations

from importlib import import_module
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.utils.crypto import constant_time_compare

from access.roles import SUPERVISOR
from conversations.models import Conversation, Interrupt, Message
from conversations.selectors import (
    conversation_get_for_handoff,
    customer_messages_summary,
    interrupts_of,
    interrupts_pending_for_staff,
    messages_after,
    tool_calls_of,
)
from escalations.models import Escalation
from escalations.packet import PacketFacts

Status = Escalation.Status
VIEW_PERMISSION = "escalations.view_escalation"
ACT_PERMISSION = "escalations.change_escalation"
DECIDE_PERMISSION = "conversations.decide_interrupt"
QUEUE_LIMIT = 200

_PRIORITY_RANK = Case(
    When(priority=Escalation.Priority.HIGH, then=Value(0)),
    When(priority=Escalation.Priority.NORMAL, then=Value(1)),
    default=Value(2),
    output_field=IntegerField(),
)

# A request's or a socket scope's user: a User, AnonymousUser, a lazy wrapper or None.
AnyUser = Any


def user_may_view_queue(user: AnyUser) -> bool:
    """Staff stream and pages: active staff members holding the view permission."""
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and getattr(user, "is_staff", False)
        and user.has_perm(VIEW_PERMISSION)
    )


def user_is_supervisor(user: AnyUser) -> bool:
    """Supervisors (and superusers) may act on conversations another agent holds."""
    if user is None or not user.is_authenticated:
        return False
    if getattr(user, "is_superuser", False):
        return True
    return bool(user.groups.filter(name=SUPERVISOR).exists())


def escalation_get(*, escalation_id: int | str) -> Escalation:
    """Raises ``Escalation.DoesNotExist`` (404 in the API and admin views)."""
    return Escalation.objects.select_related("conversation", "claimed_by", "closed_by").get(
        pk=escalation_id
    )


def escalation_open_for_conversation(*, conversation_id: UUID | str) -> Escalation | None:
    return (
        Escalation.objects.select_related("claimed_by")
        .filter(conversation_id=conversation_id, status__in=Escalation.OPEN_STATUSES)
        .first()
    )


def escalation_list(
    *, status: str | None = None, priority: str | None = None
) -> QuerySet[Escalation]:
    escalations = Escalation.objects.select_related("conversation", "claimed_by").order_by(
        "-created_at", "-id"
    )
    if status:
        escalations = escalations.filter(status=status)
    if priority:
        escalations = escalations.filter(priority=priority)
    return escalations


def escalation_queue() -> list[Escalation]:
    """Waiting escalations by priority then age, then the claimed ones, oldest first."""
    waiting = (
        Escalation.objects.filter(status=Status.WAITING)
        .select_related("conversation", "claimed_by")
        .annotate(rank=_PRIORITY_RANK)
        .order_by("rank", "created_at")[:QUEUE_LIMIT]
    )
    claimed = (
        Escalation.objects.filter(status=Status.CLAIMED)
        .select_related("conversation", "claimed_by")
        .order_by("claimed_at")[:QUEUE_LIMIT]
    )
    return [*waiting, *claimed]


def escalations_open_on_closed_conversations() -> QuerySet[Escalation]:
    return Escalation.objects.filter(
        status__in=Escalation.OPEN_STATUSES, conversation__state=Conversation.State.CLOSED
    )


def staff_interrupts_pending(*, conversation_id: UUID | str | None = None) -> list[Interrupt]:
    return interrupts_pending_for_staff(conversation_id=conversation_id, limit=QUEUE_LIMIT)


def handoff_messages(*, conversation_id: UUID | str) -> list[Message]:
    """The conversation's whole timeline (messages, tool calls and results, interrupts,
    escalation and staff items are all durable messages), in order."""
    return messages_after(conversation_id=conversation_id, after=0, limit=None)


def packet_facts_get(*, conversation_id: UUID | str) -> PacketFacts:
    conversation = conversation_get_for_handoff(conversation_id=conversation_id)
    customer = customer_messages_summary(conversation_id=conversation_id)
    user = conversation.user
    return PacketFacts(
        conversation_id=str(conversation.pk),
        title=conversation.title,
        state=conversation.state,
        started_at=conversation.created_at,
        visitor_id=conversation.visitor_id,
        user={"username": user.get_username(), "email": user.email} if user else None,
        context=dict(conversation.context),
        agent=conversation.current_agent.name if conversation.current_agent else "",
        customer_messages=[
            {"seq": m.seq, "content": m.content, "at": m.created_at.isoformat()}
            for m in customer.first_and_last
        ],
        customer_message_count=customer.count,
        turn_count=conversation.turn_count,
        tool_calls=[
            {
                "operation": call.operation_name,
                "arguments": call.arguments,
                "status": call.status,
                "http_status": call.http_status,
                "error_kind": call.error_kind,
                "error": call.error_message,
                "at": call.created_at.isoformat(),
            }
            for call in tool_calls_of(conversation_id=conversation_id)
        ],
        interrupts=[
            {
                "id": str(item.pk),
                "operation": item.operation_name,
                "summary": item.summary,
                "arguments": item.arguments,
                "status": item.status,
                "approver": item.approver,
                "policy_reason": item.policy_reason,
                "at": item.created_at.isoformat(),
            }
            for item in interrupts_of(conversation_id=conversation_id)
        ],
    )


def user_session_valid(*, user_id: int, session_key: str | None, session_hash: str) -> bool:
    """Whether a socket opened with this session still speaks for the user: the user exists
    and is active, their password (hence ``get_session_auth_hash``) is the one the socket
    connected with, and the session is still in the store, unexpired and theirs (logout
    flushes it)."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    return user is not None and _session_matches(user, session_key, session_hash)


def staff_session_valid(*, user_id: int, session_key: str | None, session_hash: str) -> bool:
    """:func:`user_session_valid`, and the user is still staff allowed to see the queue."""
    user = User.objects.filter(pk=user_id).first()
    return (
        user is not None
        and user_may_view_queue(user)
        and _session_matches(user, session_key, session_hash)
    )


def _session_matches(user: User, session_key: str | None, session_hash: str) -> bool:
    if not session_key or not session_hash:
        return False
    if not constant_time_compare(session_hash, user.get_session_auth_hash()):
        return False
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)
    stored_hash = session.get(HASH_SESSION_KEY) or ""
    return session.get(SESSION_KEY) == str(user.pk) and constant_time_compare(
        stored_hash, user.get_session_auth_hash()
    )
