"""The hand-off seam between a conversation and the humans who take it over (SPEC §7).

``conversations`` decides *that* a conversation goes to staff (``services.handoff_request``);
what happens next (queue, packet, notifications) belongs to whichever app registers a receiver
here at start, today ``escalations`` in its ``AppConfig.ready``. Without one, a hand-off still
moves the conversation and tells the customer."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from conversations.models import Conversation


class HandoffTrigger(StrEnum):
    """What handed the conversation over (``Escalation.trigger``)."""

    CUSTOMER_BUTTON = "customer_button"
    CUSTOMER_WORDS = "customer_words"
    TOO_MANY_TURNS = "too_many_turns"
    BUDGET = "budget"  # a turn ran out of model calls (before budget_exceeded)
    BUDGET_EXCEEDED = "budget_exceeded"  # any budget (conversations.budgets)
    LLM_UNAVAILABLE = "llm_unavailable"
    TOOL_FAILURE = "tool_failure"
    TOOL_AUTH_ERROR = "tool_auth_error"
    REPEATED_REJECTIONS = "repeated_rejections"
    STAFF_TAKEOVER = "staff_takeover"


class HandoffReceiver(Protocol):
    def __call__(
        self, *, conversation: Conversation, trigger: str, reason: str, actor: User | None
    ) -> object: ...


_receiver: HandoffReceiver | None = None


def handoff_receiver_register(receiver: HandoffReceiver | None) -> None:
    """Called once at start by the app that takes hand-offs (``None`` unregisters: tests)."""
    global _receiver
    _receiver = receiver


def handoff_receiver() -> HandoffReceiver | None:
    return _receiver
