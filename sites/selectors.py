from __future__ import annotations

from typing import Any
from uuid import UUID

from django.core.exceptions import ValidationError as DjangoValidationError

from conversations.models import Conversation, IdentitySource
from sites.models import Site
from sites.visitors import visitor_token_read


def site_get_enabled(*, public_id: str) -> Site | None:
    """The enabled site with this public id; ``None`` for an unknown or disabled one."""
    if not isinstance(public_id, str) or not public_id or len(public_id) > 32:
        return None
    return Site.objects.filter(public_id=public_id, enabled=True).first()


def site_for_conversation(*, conversation_id: UUID | str) -> Site | None:
    return Site.objects.filter(conversations__pk=conversation_id).first()


def site_agent_ids(*, site_id: int) -> set[int] | None:
    """The agents a site's conversations may use, or ``None`` when any enabled agent may answer
    (the site chose none)."""
    ids = set(
        Site.agents.through.objects.filter(site_id=site_id).values_list("agent_id", flat=True)
    )
    return ids or None


def conversation_get_for_widget(*, conversation_id: UUID | str, token: Any) -> Conversation | None:
    """The widget conversation the visitor token opens: the token must be signed for the
    conversation's own site, which must be enabled. ``None`` otherwise, whatever the reason."""
    try:
        conversation = (
            Conversation.objects.select_related("site").filter(pk=conversation_id).first()
        )
    except (ValueError, DjangoValidationError):
        return None
    if conversation is None or conversation.site is None or not conversation.site.enabled:
        return None
    if conversation.user_id is not None:
        return None
    visitor = visitor_token_read(site=conversation.site, token=token)
    if visitor and conversation.visitor_id == visitor:
        return conversation
    return None


def conversation_latest_open_for_site_visitor(
    *, site: Site, visitor_id: str
) -> Conversation | None:
    return (
        Conversation.objects.filter(site=site, visitor_id=visitor_id, user__isnull=True)
        .exclude(state=Conversation.State.CLOSED)
        .order_by("-updated_at")
        .first()
    )


def conversation_latest_open_for_site_customer(
    *, site: Site, customer_id: str
) -> Conversation | None:
    """The signed-in customer's open conversation on this site, from whichever device it was
    started (SPEC §3: a verified customer is bound to their conversations)."""
    return (
        Conversation.objects.filter(
            site=site,
            customer_id=customer_id,
            identity_source=IdentitySource.SIGNED,
            user__isnull=True,
        )
        .exclude(state=Conversation.State.CLOSED)
        .order_by("-updated_at")
        .first()
    )
