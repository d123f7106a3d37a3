"""Who the customer is (SPEC §3): signed identity tokens and the services that set a
conversation's verified customer (docs/identity.md).

A conversation starts anonymous. It becomes verified from one of three sources:

- ``signed``: the business's own site signs the customer's id and email with
  ``IDENTITY_SECRET`` (HMAC-SHA256, with an expiry and a one-time nonce) and passes the token to
  the chat (``?identity=`` on the chat page or an ``identify`` frame on the socket);
- ``api``: a program that holds an API key creates or identifies the conversation for its user;
- ``verification``: an operation of the business's API marked ``verify_confirm`` answered with
  the customer (the runtime calls :func:`conversation_identify` with its result).

Once verified, a conversation never switches to another customer: a second identity naming
someone else is refused (``identity_conflict``), so an approval always comes from the customer
the action was proposed for.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import structlog
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.utils import timezone

from config.errors import ApplicationError, ErrorCode
from conversations.models import Conversation, IdentitySource

logger = structlog.get_logger(__name__)

TOKEN_VERSION = "v1"  # noqa: S105 (a format version, not a secret)
# Clock difference tolerated between the business's servers and ours.
CLOCK_SKEW_SECONDS = 60
MAX_TOKEN_CHARS = 4096
MAX_CLAIM_CHARS = 200
CLAIMS = ("customer.id", "customer.email", "customer.name")


@dataclass(frozen=True)
class Identity:
    """A verified customer: the claims bound parameters are filled from."""

    customer_id: str
    email: str
    name: str = ""

    def claim(self, name: str) -> str:
        return {
            "customer.id": self.customer_id,
            "customer.email": self.email,
            "customer.name": self.name,
        }.get(name, "")


def identity_of(conversation: Conversation) -> Identity | None:
    if not conversation.is_verified:
        return None
    return Identity(
        customer_id=conversation.customer_id,
        email=conversation.customer_email,
        name=conversation.customer_name,
    )


# --- Tokens ------------------------------------------------------------------------------------


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: str, signed_part: str) -> str:
    digest = hmac.new(secret.encode(), signed_part.encode("ascii"), hashlib.sha256).digest()
    return _b64encode(digest)


def identity_token_sign(
    *,
    customer_id: str,
    email: str,
    name: str = "",
    secret: str | None = None,
    max_age: int | None = None,
    now: float | None = None,
    nonce: str | None = None,
) -> str:
    """A token as the business's site makes it (the Python snippet of docs/identity.md)."""
    secret = settings.IDENTITY_SECRET if secret is None else secret
    issued = int(time.time() if now is None else now)
    payload = {
        "sub": customer_id,
        "email": email,
        "name": name,
        "iat": issued,
        "exp": issued + (settings.IDENTITY_TOKEN_MAX_AGE_SECONDS if max_age is None else max_age),
        "nonce": nonce or secrets.token_urlsafe(16),
    }
    body = _b64encode(json.dumps(payload, separators=(",", ":")).encode())
    signed_part = f"{TOKEN_VERSION}.{body}"
    return f"{signed_part}.{_signature(secret, signed_part)}"


def _refuse(code: ErrorCode, message: str, reason: str) -> ApplicationError:
    logger.warning("identity_refused", code=str(code), reason=reason)
    return ApplicationError(code, message)


def _invalid(reason: str) -> ApplicationError:
    return _refuse(
        ErrorCode.IDENTITY_INVALID,
        "The identity could not be verified. Sign in again on the site and reopen the chat.",
        reason,
    )


def _claim_text(payload: Mapping[str, Any], key: str, *, required: bool) -> str:
    value = payload.get(key, "")
    if isinstance(value, int) and not isinstance(value, bool) and key == "sub":
        value = str(value)
    if not isinstance(value, str) or len(value) > MAX_CLAIM_CHARS or "\x00" in value:
        raise _invalid(f"bad_{key}")
    value = value.strip()
    if required and not value:
        raise _invalid(f"missing_{key}")
    return value


def identity_token_verify(
    token: Any, *, now: float | None = None, secret: str | None = None
) -> Identity:
    """The identity a token carries, or ``ApplicationError`` with ``identity_invalid`` (forged,
    unsigned, malformed), ``identity_expired`` or ``identity_replayed``. A token is good once:
    its nonce is remembered until the token expires. ``secret`` is a widget site's own
    (``Site.identity_secret``); the default is ``IDENTITY_SECRET``, the chat page's."""
    secret = settings.IDENTITY_SECRET if secret is None else secret
    if not secret:
        raise _refuse(
            ErrorCode.IDENTITY_INVALID,
            "Signed identities are not enabled on this site.",
            "not_configured",
        )
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        raise _invalid("malformed")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != TOKEN_VERSION or not parts[1] or not parts[2]:
        raise _invalid("malformed")
    expected = _signature(secret, f"{parts[0]}.{parts[1]}")
    # Constant time: the comparison time tells nothing about how much of a forgery was right.
    if not hmac.compare_digest(expected.encode("ascii"), parts[2].encode("ascii", "replace")):
        raise _invalid("bad_signature")
    try:
        payload = json.loads(_b64decode(parts[1]))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise _invalid("malformed_payload") from None
    if not isinstance(payload, dict):
        raise _invalid("malformed_payload")
    current = time.time() if now is None else now
    exp, iat = payload.get("exp"), payload.get("iat")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (exp, iat)):
        raise _invalid("missing_times")
    assert isinstance(exp, int) and isinstance(iat, int)
    if exp <= current:
        raise _refuse(
            ErrorCode.IDENTITY_EXPIRED,
            "The identity has expired. Reload the page to sign it again.",
            "expired",
        )
    if iat > current + CLOCK_SKEW_SECONDS or exp - iat > settings.IDENTITY_TOKEN_MAX_AGE_SECONDS:
        raise _invalid("lifetime")
    nonce = payload.get("nonce")
    if not isinstance(nonce, str) or not 8 <= len(nonce) <= 128:
        raise _invalid("missing_nonce")
    customer_id = _claim_text(payload, "sub", required=True)
    email = _claim_text(payload, "email", required=True)
    name = _claim_text(payload, "name", required=False)
    try:
        validate_email(email)
    except DjangoValidationError:
        raise _invalid("bad_email") from None
    # Last, so a refused token does not burn its nonce; cache.add is atomic on every backend.
    digest = hashlib.sha256(nonce.encode()).hexdigest()
    if not cache.add(f"identity-nonce:{digest}", 1, timeout=int(exp - current) + 1):
        raise _refuse(
            ErrorCode.IDENTITY_REPLAYED,
            "This identity was already used. Reload the page to sign a new one.",
            "replayed",
        )
    return Identity(customer_id=customer_id, email=email.lower(), name=name)


# --- Services ----------------------------------------------------------------------------------


def conversation_identify(
    *, conversation_id: UUID | str, identity: Identity, source: str
) -> Conversation:
    """Set the conversation's verified customer. The same customer again refreshes it; another
    customer is refused with ``identity_conflict`` (start a new conversation instead)."""
    from conversations.services import message_append

    if source not in (IdentitySource.SIGNED, IdentitySource.API, IdentitySource.VERIFICATION):
        raise ValueError(f"Unknown identity source {source!r}.")
    conversation = Conversation.objects.select_for_update().get(pk=conversation_id)
    if conversation.is_verified and (
        conversation.customer_id != identity.customer_id
        or conversation.customer_email.lower() != identity.email.lower()
    ):
        logger.warning(
            "identity_conflict", conversation_id=str(conversation.pk), source=str(source)
        )
        raise ApplicationError(
            ErrorCode.IDENTITY_CONFLICT,
            "This conversation already belongs to another customer; start a new conversation.",
        )
    first = not conversation.is_verified
    conversation.identity_source = source
    conversation.customer_id = identity.customer_id
    conversation.customer_email = identity.email
    conversation.customer_name = identity.name
    conversation.verified_at = timezone.now()
    conversation.save(
        update_fields=[
            "identity_source",
            "customer_id",
            "customer_email",
            "customer_name",
            "verified_at",
            "updated_at",
        ]
    )
    if first:
        who = identity.name or identity.email
        message_append(
            conversation_id=conversation.pk,
            kind="message",
            role="system",
            content=f"You're verified as {who}.",
            payload={"frame": {"identity": identity_frame(conversation)}},
        )
    logger.info("conversation_identified", conversation_id=str(conversation.pk), source=source)
    return conversation


def conversation_identify_with_token(*, conversation_id: UUID | str, token: Any) -> Conversation:
    """The chat's path: a token from the business's site (the page's ``?identity=`` or the
    socket's ``identify`` frame). A widget conversation's token is signed with its site's
    secret, so one business cannot vouch for customers on another's widget."""
    from django.db import transaction

    site_secret = (
        Conversation.objects.filter(pk=conversation_id)
        .values_list("site__identity_secret", flat=True)
        .first()
    )
    identity = identity_token_verify(token, secret=site_secret)
    with transaction.atomic():
        return conversation_identify(
            conversation_id=conversation_id, identity=identity, source=IdentitySource.SIGNED
        )


def conversation_create_for_customer(
    *, customer_id: str, email: str, name: str = "", visitor_id: str = ""
) -> Conversation:
    """A program's path (the API, issue 17): it authenticated with its key and vouches for its
    user, so the conversation starts verified."""
    from django.db import transaction

    from conversations.services import conversation_start

    try:
        validate_email(email)
    except DjangoValidationError:
        raise ApplicationError(
            ErrorCode.VALIDATION_ERROR, "email is not an email address."
        ) from None
    if not customer_id.strip() or len(customer_id) > MAX_CLAIM_CHARS:
        raise ApplicationError(ErrorCode.VALIDATION_ERROR, "customer_id is required.")
    identity = Identity(customer_id=customer_id.strip(), email=email.lower(), name=name.strip())
    with transaction.atomic():
        conversation = conversation_start(visitor_id=visitor_id)
        return conversation_identify(
            conversation_id=conversation.pk, identity=identity, source=IdentitySource.API
        )


def identity_frame(conversation: Conversation) -> dict[str, Any]:
    """What the customer's page shows about who they are (never the customer id)."""
    return {
        "verified": conversation.is_verified,
        "source": conversation.identity_source,
        "email": conversation.customer_email if conversation.is_verified else "",
        "name": conversation.customer_name if conversation.is_verified else "",
    }


def identity_from_result(data: Any) -> Identity | None:
    """The customer a ``verify_confirm`` operation answered with: ``{"customer_id" | "id",
    "email", "name"}``, at the top level or under ``customer``."""
    if isinstance(data, dict) and isinstance(data.get("customer"), dict):
        data = data["customer"]
    if not isinstance(data, dict):
        return None
    raw_id = next(
        (data[k] for k in ("customer_id", "id", "user_id") if data.get(k) not in (None, "")), None
    )
    email = data.get("email")
    if raw_id is None or isinstance(raw_id, bool) or not isinstance(email, str):
        return None
    try:
        validate_email(email)
    except DjangoValidationError:
        return None
    name = data.get("name")
    name = name[:MAX_CLAIM_CHARS] if isinstance(name, str) else ""
    return Identity(customer_id=str(raw_id)[:MAX_CLAIM_CHARS], email=email.lower(), name=name)


# --- The demo ----------------------------------------------------------------------------------

DEMO_EMAILS = ("ana@example.com", "ben@example.com")


def demo_enabled() -> bool:
    """Demo-only helpers (the "continue as Ana" buttons) exist in development or when the demo
    shop is switched on, never in a plain production deployment."""
    from django.apps import apps

    if not apps.is_installed("demo_shop"):
        return False
    return bool(settings.DEBUG or getattr(settings, "DEMO_SHOP_ENABLED", False))


def demo_customers() -> list[dict[str, str]]:
    """The demo shop's customers the chat page offers to continue as (id, email, name)."""
    from demo_shop.selectors import customers_for_emails

    return [
        {"id": str(c.pk), "email": c.email, "name": c.name}
        for c in customers_for_emails(emails=DEMO_EMAILS)
    ]
