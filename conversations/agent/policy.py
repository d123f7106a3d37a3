"""Which operations a conversation's customer may use (SPEC §3, docs/identity.md).

An anonymous visitor is anyone holding the chat: until the customer is verified, an operation
that writes, reads personal data or is bound to the customer's identity is not offered to the
model and is refused if called anyway. The verification operations themselves stay available,
so the customer can verify inside the chat.
"""

from __future__ import annotations

from typing import Any, Protocol

from openapi_import.vocabulary import AccessType, IdentityRole


class Operation(Protocol):
    """What the rules read of an imported operation (``openapi_import.models.Operation``)."""

    @property
    def access_type(self) -> str: ...
    @property
    def identity_role(self) -> str: ...
    @property
    def personal_data(self) -> bool: ...
    @property
    def identity_bindings(self) -> Any: ...


VERIFICATION_OFFER = (
    "I can only do that for a verified customer, and I don't know yet who you are. "
    "If you're signed in on our site, choose “continue as signed in” (or reload the chat from "
    "your account page). {verify}Or I can bring in a member of our team."
)
VERIFY_BY_EMAIL = (
    "I can also verify your email here: tell me the email address on your account and I'll "
    "send you a one-time code. "
)


def needs_verified_customer(operation: Operation) -> bool:
    """True for operations an anonymous visitor may never use."""
    if operation.identity_role in (IdentityRole.VERIFY_START, IdentityRole.VERIFY_CONFIRM):
        return False
    return (
        operation.access_type != AccessType.READ
        or operation.personal_data
        or bool(operation.identity_bindings)
    )


def operation_available(operation: Operation, *, verified: bool) -> bool:
    return verified or not needs_verified_customer(operation)


def is_verifier(operation: Operation) -> bool:
    return operation.identity_role in (IdentityRole.VERIFY_START, IdentityRole.VERIFY_CONFIRM)


def verification_offer(*, can_verify_in_chat: bool) -> str:
    return VERIFICATION_OFFER.format(verify=VERIFY_BY_EMAIL if can_verify_in_chat else "")
