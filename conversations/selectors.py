from __future__ import annotations

from uuid import UUID

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from conversations.models import Agent, Conversation, Message


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


def messages_after(*, conversation_id: UUID | str, after: int, limit: int = 500) -> list[Message]:
    return list(
        Message.objects.filter(conversation_id=conversation_id, seq__gt=after).order_by("seq")[
            :limit
        ]
    )


def agents_enabled() -> QuerySet[Agent]:
    return Agent.objects.filter(enabled=True).prefetch_related("operations__spec")
