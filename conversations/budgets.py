"""Budgets per conversation and turn (SPEC §12, OWASP LLM10 unbounded consumption).

Turns per conversation, tokens per conversation, model calls and tool calls per turn, and wall
time per turn, each with a setting. Crossing one never stops a turn silently: the customer is
told, and the conversation is handed to staff with the trigger ``budget_exceeded`` and a reason
naming the budget (:func:`budget_exceeded_handle`). The checks are plain functions of counters
the runtime already keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import structlog
from django.conf import settings
from django.db.models import F, OuterRef, Subquery, Sum

if TYPE_CHECKING:
    from conversations.models import Turn

logger = structlog.get_logger(__name__)


class Budget(StrEnum):
    TURNS = "turns"
    TOKENS = "tokens"
    MODEL_CALLS = "model_calls"
    TOOL_CALLS = "tool_calls"
    WALL_TIME = "wall_time"


# What the customer reads: what happened, that the message is kept, and that a person comes.
_CUSTOMER_TEXT = {
    Budget.TURNS: "This conversation has reached the length I can handle on my own.",
    Budget.TOKENS: "This conversation has reached the amount of work I can do on my own.",
    Budget.MODEL_CALLS: "I couldn't finish that within my limits.",
    Budget.TOOL_CALLS: "That needed more lookups and actions than I may make in one reply.",
    Budget.WALL_TIME: "Sorry, that took too long.",
}
HANDOFF_TEXT = "I'm asking a member of our support team to take over; your messages are kept."


ERROR_CODE = "budget_exceeded"  # the turn's error_code (and its turn_failed event's outcome)


@dataclass(frozen=True)
class Exceeded:
    budget: Budget
    limit: float
    used: float

    @property
    def customer_text(self) -> str:
        return f"{_CUSTOMER_TEXT[self.budget]} {HANDOFF_TEXT}"

    @property
    def reason(self) -> str:
        """For staff (the escalation's reason and the packet)."""
        unit = "s" if self.budget == Budget.WALL_TIME else ""
        return (
            f"The {self.budget.value.replace('_', ' ')} budget was exceeded "
            f"({self.used:g}{unit} of {self.limit:g}{unit})."
        )


class BudgetExceeded(Exception):
    """Raised inside a turn; the runtime ends the turn with :func:`budget_exceeded_handle`."""

    def __init__(self, exceeded: Exceeded) -> None:
        super().__init__(exceeded.reason)
        self.exceeded = exceeded


def turns_check(*, turn_count: int) -> Exceeded | None:
    """``turn_count``: the conversation's turns including the one starting."""
    limit = settings.CONVERSATION_MAX_TURNS
    return Exceeded(Budget.TURNS, limit, turn_count) if turn_count > limit else None


def model_calls_check(*, model_calls: int) -> Exceeded | None:
    """Before a model call; ``model_calls`` made in this turn so far."""
    limit = settings.TURN_MAX_MODEL_CALLS
    return Exceeded(Budget.MODEL_CALLS, limit, model_calls + 1) if model_calls >= limit else None


def tool_calls_check(*, tool_calls: int, requested: int = 1) -> Exceeded | None:
    """Before running ``requested`` more calls; ``tool_calls`` made in this turn so far."""
    limit = settings.TURN_MAX_TOOL_CALLS
    wanted = tool_calls + requested
    return Exceeded(Budget.TOOL_CALLS, limit, wanted) if wanted > limit else None


def tokens_check(*, used: int) -> Exceeded | None:
    """After a model call; ``used``: the conversation's prompt and completion tokens so far."""
    limit = settings.CONVERSATION_MAX_TOKENS
    return Exceeded(Budget.TOKENS, limit, used) if used > limit else None


def wall_time_exceeded() -> Exceeded:
    limit = settings.TURN_TIMEOUT_SECONDS
    return Exceeded(Budget.WALL_TIME, limit, limit)


def tokens_subquery() -> Any:
    """The tokens the conversation's turns used, as a scalar subquery on ``OuterRef
    ("conversation_id")``: the budget rides on a query the runtime makes anyway."""
    from conversations.models import Turn

    return Subquery(
        Turn.objects.filter(conversation_id=OuterRef("conversation_id"))
        .values("conversation_id")
        .annotate(used=Sum(F("prompt_tokens") + F("completion_tokens")))
        .values("used")[:1]
    )


def budget_exceeded_handle(
    *, conversation_id: str, turn: Turn | None, exceeded: Exceeded, say: bool = True
) -> None:
    """Tell the customer (``say``), log it, and hand over (trigger ``budget_exceeded``). The
    turn itself is finished by the runtime with error code ``budget_exceeded``, which the
    ``turn_failed`` event carries."""
    from conversations.handoff import HandoffTrigger
    from conversations.models import Message
    from conversations.services import handoff_request, message_append

    logger.warning(
        "budget_exceeded",
        conversation_id=conversation_id,
        budget=exceeded.budget.value,
        limit=exceeded.limit,
        used=exceeded.used,
    )
    if say:
        message_append(
            conversation_id=conversation_id,
            role=Message.Role.SYSTEM,
            content=exceeded.customer_text,
            turn=turn,
            payload={"frame": {"turn_id": turn.pk}} if turn else {},
        )
    handoff_request(
        conversation_id=conversation_id,
        trigger=HandoffTrigger.BUDGET_EXCEEDED,
        reason=exceeded.reason,
    )
