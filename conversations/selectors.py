from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from django.contrib.auth.models import AnonymousUser, User
from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from conversations.models import Agent, Conversation, Interrupt, Message, ToolCall, Turn


def conversation_get_for_visitor(
    *, conversation_id: UUID | str, visitor_id: str | None, user: User | AnonymousUser | None
) -> Conversation | None:
    """The conversation when it belongs to this visitor (or signed-in user); ``None`` otherwise,
    so callers cannot tell someone else's conversation from one that does not exist."""
    try:
        conversation = Conversation.objects.get(pk=conversation_id)
    except (Conversation.DoesNotExist, ValueError):
        return None
    if conversation.user_id is not None:
        if user is not None and user.is_authenticated and user.pk == conversation.user_id:
            return conversation
        return None
    if visitor_id and conversation.visitor_id == visitor_id:
        return conversation
    return None


def conversation_latest_open_for_visitor(*, visitor_id: str) -> Conversation | None:
    return (
        Conversation.objects.filter(visitor_id=visitor_id)
        .exclude(state=Conversation.State.CLOSED)
        .order_by("-updated_at")
        .first()
    )


def messages_after(
    *, conversation_id: UUID | str, after: int, limit: int | None = 500
) -> list[Message]:
    """The timeline after ``after``, in order (``limit=None``: all of it)."""
    messages = Message.objects.filter(conversation_id=conversation_id, seq__gt=after).order_by(
        "seq"
    )
    return list(messages if limit is None else messages[:limit])


def agents_enabled() -> QuerySet[Agent]:
    return Agent.objects.filter(enabled=True).prefetch_related("operations__spec")


@dataclass(frozen=True)
class WorkSummary:
    unsettled_interrupts: bool  # an interrupt whose tool call has not run yet
    waiting_message_id: int | None  # the first customer message no turn has taken
    state: str | None


def conversation_work_summary(*, conversation_id: UUID | str) -> WorkSummary:
    """What the runtime needs to know to find a conversation's next work, in one round trip.

    Raw SQL on purpose: the runtime asks this twice per chat turn, and the three ORM queries
    it replaces cost ten times more to build than to run (docs/performance.md). Table and
    column names come from the models, so a rename cannot leave it behind."""
    quote = connection.ops.quote_name
    interrupt, tool_call = Interrupt._meta, ToolCall._meta
    message, turn, conversation = Message._meta, Turn._meta, Conversation._meta
    sql = (
        f"SELECT EXISTS (SELECT 1 FROM {quote(interrupt.db_table)} i "  # noqa: S608
        f"JOIN {quote(tool_call.db_table)} c ON c.id = i.tool_call_id "
        "WHERE i.conversation_id = %s AND c.status = %s), "
        f"(SELECT m.id FROM {quote(message.db_table)} m "
        f"LEFT JOIN {quote(turn.db_table)} t ON t.user_message_id = m.id "
        "WHERE m.conversation_id = %s AND m.role = %s AND m.kind = %s AND t.id IS NULL "
        "ORDER BY m.seq LIMIT 1), "
        f"(SELECT state FROM {quote(conversation.db_table)} WHERE id = %s)"
    )
    key = conversation.pk.get_db_prep_value(conversation_id, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                key,
                ToolCall.Status.PENDING,
                key,
                Message.Role.USER,
                Message.Kind.MESSAGE,
                key,
            ],
        )
        unsettled, waiting, state = cursor.fetchone()
    return WorkSummary(bool(unsettled), waiting, state)


# --- For the humans who take a conversation over (the escalations app) -----------------------


def conversation_get_for_handoff(*, conversation_id: UUID | str) -> Conversation:
    return Conversation.objects.select_related("user", "current_agent").get(pk=conversation_id)


def conversations_ai_active(*, limit: int = 20) -> list[Conversation]:
    """Recent conversations the AI holds, which staff may take over."""
    states = (Conversation.State.AI_ACTIVE, Conversation.State.AWAITING_APPROVAL)
    return list(Conversation.objects.filter(state__in=states).order_by("-updated_at")[:limit])


@dataclass(frozen=True)
class CustomerMessages:
    first_and_last: list[Message]  # one item when there is a single message
    count: int


def customer_messages_summary(*, conversation_id: UUID | str) -> CustomerMessages:
    customer = Message.objects.filter(
        conversation_id=conversation_id, role=Message.Role.USER, kind=Message.Kind.MESSAGE
    )
    first = customer.order_by("seq").first()
    last = customer.order_by("-seq").first()
    picked = [m for m in dict.fromkeys([first, last]) if m is not None]
    return CustomerMessages(picked, customer.count())


def tool_calls_of(*, conversation_id: UUID | str) -> list[ToolCall]:
    return list(ToolCall.objects.filter(conversation_id=conversation_id).order_by("created_at"))


def interrupts_of(*, conversation_id: UUID | str) -> list[Interrupt]:
    return list(Interrupt.objects.filter(conversation_id=conversation_id).order_by("created_at"))


def interrupts_pending_for_staff(
    *, conversation_id: UUID | str | None = None, limit: int = 100
) -> list[Interrupt]:
    """Undecided, unexpired interrupts that staff approve, oldest first."""
    interrupts = Interrupt.objects.filter(
        status=Interrupt.Status.PENDING,
        approver=Interrupt.Approver.STAFF,
        expires_at__gt=timezone.now(),
    ).order_by("created_at")
    if conversation_id is not None:
        interrupts = interrupts.filter(conversation_id=conversation_id)
    return list(interrupts[:limit])
