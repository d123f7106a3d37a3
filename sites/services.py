"""The widget's writes: a visitor's session (who they are, which conversation is theirs) and
the conversation started by the first message (docs/widget.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog
from django.core import signing
from django.db import transaction

from config.errors import ApplicationError, ErrorCode
from conversations.identity import (
    Identity,
    conversation_identify,
    identity_frame,
    identity_token_verify,
)
from conversations.models import Conversation, IdentitySource
from conversations.services import conversation_start
from conversations.visitors import new_visitor_id
from sites.models import Site
from sites.selectors import (
    conversation_latest_open_for_site_customer,
    conversation_latest_open_for_site_visitor,
)
from sites.visitors import visitor_token_read, visitor_token_sign

logger = structlog.get_logger(__name__)

# A verified identity waits this long for the first message that starts the conversation.
IDENTITY_TICKET_MAX_AGE = 60 * 60


@dataclass(frozen=True)
class WidgetSession:
    visitor_token: str
    conversation: Conversation | None
    identity_ticket: str = ""
    identity: dict[str, Any] | None = None


def _ticket_salt(site: Site) -> str:
    return f"actiondesk.widget-identity.{site.public_id}"


def _visitor(site: Site, token: Any) -> str:
    """The visitor a token names, a new one when there is none; a token that is not this
    site's own signature is refused (``visitor_invalid``), never silently replaced."""
    if token in (None, ""):
        return new_visitor_id()
    visitor = visitor_token_read(site=site, token=token)
    if visitor is None:
        logger.warning("widget_visitor_refused", site=site.public_id)
        raise ApplicationError(
            ErrorCode.VISITOR_INVALID,
            "This chat session is not valid here. Reload the page to start a new one.",
        )
    return visitor


def widget_session_open(
    *, site: Site, visitor_token: Any = None, identity_token: Any = None
) -> WidgetSession:
    """The frame's first call: the returning visitor's open conversation, or none yet. With a
    signed identity (signed by the site's own secret) the customer's open conversation from any
    device is theirs here too, and a ticket carries the identity to the first message."""
    visitor = _visitor(site, visitor_token)
    conversation = conversation_latest_open_for_site_visitor(site=site, visitor_id=visitor)
    ticket = ""
    shown: dict[str, Any] | None = None
    if identity_token not in (None, ""):
        identity = identity_token_verify(identity_token, secret=site.identity_secret)
        mine = conversation_latest_open_for_site_customer(
            site=site, customer_id=identity.customer_id
        )
        if mine is not None:
            # Another device's conversation: this frame becomes the same visitor.
            conversation, visitor = mine, mine.visitor_id
        elif conversation is not None:
            with transaction.atomic():
                conversation = conversation_identify(
                    conversation_id=conversation.pk,
                    identity=identity,
                    source=IdentitySource.SIGNED,
                )
        else:
            ticket = signing.dumps(
                {"sub": identity.customer_id, "email": identity.email, "name": identity.name},
                salt=_ticket_salt(site),
                compress=True,
            )
        shown = {"verified": True, "email": identity.email, "name": identity.name}
    if conversation is not None and conversation.is_verified:
        shown = identity_frame(conversation)
    return WidgetSession(
        visitor_token=visitor_token_sign(site=site, visitor_id=visitor),
        conversation=conversation,
        identity_ticket=ticket,
        identity=shown,
    )


def widget_conversation_start(
    *, site: Site, visitor_token: Any = None, identity_ticket: Any = None
) -> WidgetSession:
    """The first message's conversation, on this site, for this visitor (verified when the
    session's identity ticket comes along)."""
    identity: Identity | None = None
    if identity_ticket not in (None, ""):
        try:
            claims = signing.loads(
                str(identity_ticket), salt=_ticket_salt(site), max_age=IDENTITY_TICKET_MAX_AGE
            )
        except signing.BadSignature:
            raise ApplicationError(
                ErrorCode.IDENTITY_INVALID,
                "The identity could not be verified. Sign in again on the site and reopen the "
                "chat.",
            ) from None
        identity = Identity(customer_id=claims["sub"], email=claims["email"], name=claims["name"])
    visitor = _visitor(site, visitor_token)
    with transaction.atomic():
        conversation = conversation_start(visitor_id=visitor, site=site)
        if identity is not None:
            conversation = conversation_identify(
                conversation_id=conversation.pk, identity=identity, source=IdentitySource.SIGNED
            )
    logger.info(
        "widget_conversation_started", site=site.public_id, conversation_id=str(conversation.pk)
    )
    return WidgetSession(
        visitor_token=visitor_token_sign(site=site, visitor_id=visitor),
        conversation=conversation,
        identity=identity_frame(conversation) if conversation.is_verified else None,
    )
