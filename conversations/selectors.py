from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from config.errors import invalid_fields
from conversations.models import (
    Agent,
    Conversation,
    Interrupt,
    Message,
    StateTransition,
    ToolCall,
    Turn,
)

if TYPE_CHECKING:
    from sites.models import Site

DEFAULT_GREETING = "Hi! How can I help you today?"


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
    """The visitor's latest conversation, also when the inactivity job closed it recently:
    writing again reopens it (and takes a recent resolution back, docs/analytics.md)."""
    recently = timezone.now() - timedelta(days=settings.ANALYTICS_DURABLE_DAYS)
    return (
        Conversation.objects.filter(visitor_id=visitor_id)
        .exclude(
            Q(state=Conversation.State.CLOSED),
            Q(closed_at__isnull=True) | Q(closed_at__lt=recently),
        )
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


def chat_greeting(*, site: Site | None = None) -> str:
    """What the chat says when it opens: the widget site's greeting, else the fallback agent's,
    else a plain hello. Shown, not stored: an unanswered page creates nothing."""
    if site is not None and site.greeting.strip():
        return site.greeting.strip()
    agent = Agent.objects.filter(enabled=True, is_fallback=True).exclude(greeting="").first()
    return agent.greeting.strip() if agent is not None else DEFAULT_GREETING


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


# --- Analytics cohort (docs/analytics.md) ----------------------------------------------------

# "Handoff wins": an AI resolution counts only for a conversation never handed to humans.
_AI_RESOLVED = Q(escalated_at__isnull=True) & ~Q(resolution="")
_HANDLED = Q(turn_count__gt=0) | Q(escalated_at__isnull=False)


def conversations_cohort_counts(
    *, start: datetime, end: datetime, durable_before: datetime
) -> dict[str, Any]:
    """Outcome counts of the conversations started in ``[start, end)``, as they stand now."""
    cohort = Conversation.objects.filter(created_at__gte=start, created_at__lt=end).order_by()
    counts = cohort.aggregate(
        started=Count("id"),
        handled=Count("id", filter=_HANDLED),
        escalated=Count("id", filter=Q(escalated_at__isnull=False)),
        confirmed=Count("id", filter=_AI_RESOLVED & Q(resolution="confirmed")),
        assumed=Count("id", filter=_AI_RESOLVED & Q(resolution="assumed")),
        durable=Count("id", filter=_AI_RESOLVED & Q(resolved_at__lte=durable_before)),
        reopened=Count("id", filter=Q(reopen_count__gt=0)),
        reopen_base=Count(
            "id",
            filter=Q(closed_at__isnull=False)
            | Q(state=Conversation.State.RESOLVED)
            | Q(reopen_count__gt=0),
        ),
        abandoned=Count(
            "id",
            filter=_HANDLED
            & Q(state=Conversation.State.CLOSED, escalated_at__isnull=True)
            & ~_AI_RESOLVED,
        ),
        resolved_turns=Sum("resolved_turns", filter=_AI_RESOLVED),
    )
    # The distribution, not every value: a few rows however large the cohort.
    counts["turns_to_resolution"] = {
        row["resolved_turns"]: row["n"]
        for row in cohort.filter(_AI_RESOLVED, resolved_turns__isnull=False)
        .values("resolved_turns")
        .annotate(n=Count("id"))
    }
    return counts


def conversations_cohort_series(
    *, start: datetime, end: datetime, tz: tzinfo, daily: bool
) -> dict[datetime, dict[str, int]]:
    """Per hour or per day (in ``tz``): conversations started, AI-resolved and escalated."""
    trunc = TruncDay if daily else TruncHour
    rows = (
        Conversation.objects.filter(created_at__gte=start, created_at__lt=end)
        .order_by()
        .annotate(bucket=trunc("created_at", tzinfo=tz))
        .values("bucket")
        .annotate(
            started=Count("id"),
            ai_resolved=Count("id", filter=_AI_RESOLVED),
            escalated=Count("id", filter=Q(escalated_at__isnull=False)),
        )
    )
    return {
        row["bucket"]: {
            "started": row["started"],
            "ai_resolved": row["ai_resolved"],
            "escalated": row["escalated"],
        }
        for row in rows
    }


def replay_records(
    *, conversation_id: UUID | str
) -> tuple[Conversation, list[Message], dict[int, ToolCall], dict[str, Interrupt]]:
    """What a replay reads (analytics.replay): the timeline, its tool calls and interrupts.
    Raises ``Conversation.DoesNotExist``."""
    conversation = Conversation.objects.get(pk=conversation_id)
    messages = list(
        Message.objects.filter(conversation=conversation).select_related("author").order_by("seq")
    )
    calls = {call.pk: call for call in ToolCall.objects.filter(conversation=conversation)}
    interrupts = {str(i.pk): i for i in Interrupt.objects.filter(conversation=conversation)}
    return conversation, messages, calls, interrupts


# --- Programs (the API, SPEC §11) ---------------------------------------------------------------


def conversation_get_for_program(
    *, conversation_id: UUID | str, integration: str | None
) -> Conversation:
    """The conversation when ``integration`` may see it (``None``: staff, who see all); raises
    ``Conversation.DoesNotExist`` otherwise, so another integration's conversation looks
    exactly like one that does not exist (404)."""
    conversations = Conversation.objects.select_related("current_agent")
    if integration is not None:
        conversations = conversations.filter(integration=integration)
    try:
        return conversations.get(pk=conversation_id)
    except (ValueError, DjangoValidationError) as exc:
        raise Conversation.DoesNotExist(str(exc)) from exc


def _cursor_encode(conversation: Conversation) -> str:
    raw = f"{conversation.created_at.isoformat()}|{conversation.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _cursor_decode(cursor: str) -> tuple[datetime, UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, _, pk = raw.partition("|")
        return datetime.fromisoformat(created), UUID(pk)
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise invalid_fields(
            "cursor is not one this API handed out.", {"cursor": "invalid"}, kind="invalid"
        ) from exc


def conversation_list_for_program(
    *,
    integration: str | None,
    state: str | None = None,
    agent: str | None = None,
    escalated: bool | None = None,
    updated_since: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Conversation], str | None]:
    """Newest first, ``limit`` at a time; the cursor is the last row's (created_at, id), so a
    page stays stable while new conversations arrive (no offsets)."""
    conversations = Conversation.objects.select_related("current_agent").order_by(
        "-created_at", "-id"
    )
    if integration is not None:
        conversations = conversations.filter(integration=integration)
    if state:
        conversations = conversations.filter(state=state)
    if agent:
        conversations = conversations.filter(current_agent__slug=agent)
    if escalated is not None:
        ever = StateTransition.objects.filter(
            conversation_id=OuterRef("pk"), to_state=Conversation.State.ESCALATED
        )
        conversations = conversations.filter(Exists(ever) if escalated else ~Exists(ever))
    if updated_since is not None:
        conversations = conversations.filter(updated_at__gte=updated_since)
    if cursor:
        created, pk = _cursor_decode(cursor)
        conversations = conversations.filter(
            Q(created_at__lt=created) | Q(created_at=created, id__lt=pk)
        )
    rows = list(conversations[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, _cursor_encode(rows[-1]) if more and rows else None


def messages_page(
    *, conversation_id: UUID | str, after: int = 0, limit: int = 100
) -> tuple[list[Message], int | None]:
    rows = list(
        Message.objects.filter(conversation_id=conversation_id, seq__gt=after).order_by("seq")[
            : limit + 1
        ]
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1].seq if more and rows else None


def interrupts_pending_for_program(
    *,
    integration: str | None,
    conversation_id: UUID | str | None = None,
    approver: str | None = None,
) -> QuerySet[Interrupt]:
    interrupts = Interrupt.objects.filter(
        status=Interrupt.Status.PENDING, expires_at__gt=timezone.now()
    ).order_by("created_at")
    if integration is not None:
        interrupts = interrupts.filter(conversation__integration=integration)
    if conversation_id is not None:
        interrupts = interrupts.filter(conversation_id=conversation_id)
    if approver:
        interrupts = interrupts.filter(approver=approver)
    return interrupts
