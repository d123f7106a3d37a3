"""What a turn carries between its steps: the plan stored on the turn (``Turn.plan``), and the
closed vocabularies of how an intent ends and why a turn failed. Plain data, no ORM."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class TurnOutcome(StrEnum):
    """How one intent of a turn ended."""

    DONE = "done"  # answered (or asked back): the next intent may run
    STOP = "stop"  # handed to humans, or out of budget: the rest of the turn is dropped
    PAUSED = "paused"  # a call waits for a decision: the turn resumes after it


class TurnErrorCode(StrEnum):
    """``Turn.error_code``: why a turn failed, or how a paused one ended."""

    BACKEND_UNAVAILABLE = "backend_unavailable"
    INTERNAL_ERROR = "internal_error"
    BUDGET_EXCEEDED = "budget_exceeded"
    INTERRUPT_EXPIRED = "interrupt_expired"
    INTERRUPTED = "interrupted"  # the process died mid-turn (conversations.recovery)


class WorkKind(StrEnum):
    MESSAGE = "message"  # a customer message no turn has taken
    DECIDED = "decided"  # an interrupt was decided and its call has not run
    RECOVER = "recover"  # paused, but nothing is pending any more


@dataclass
class TurnPlan:
    """The turn's intents and where it stands; stored on the turn when it pauses or ends, so
    a resume (in any process) continues from here."""

    intents: list[str]
    index: int = 0
    # The agent of the current intent, and the model conversation kept while a call waits.
    agent_id: int | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    pending_call_id: str | None = None
    # Set by a failed tool call (its id) and by a failure that hands the conversation over.
    tool_failed: int | None = None
    escalate: str | None = None
    # Tokens the conversation's earlier turns used (the token budget, conversations.budgets),
    # and the PII placeholders of the model input (PII_MASK_MODEL_INPUT, config.pii).
    tokens_before: int = 0
    pii: dict[str, str] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.index >= len(self.intents)

    @property
    def current(self) -> str:
        return self.intents[self.index]

    def next_intent(self) -> None:
        """On to the next intent: the current one's agent and model conversation are spent."""
        self.index += 1
        self.agent_id = None
        self.messages = []
        self.pending_call_id = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"intents": self.intents, "index": self.index}
        if self.agent_id is not None:
            data["agent_id"] = self.agent_id
        if self.messages:
            data["messages"] = self.messages
        if self.pending_call_id is not None:
            data["pending_call_id"] = self.pending_call_id
        if self.escalate:
            data["escalate"] = self.escalate
        if self.tokens_before:
            data["tokens_before"] = self.tokens_before
        if self.pii:
            data["pii"] = self.pii
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> TurnPlan:
        data = data or {}
        return cls(
            intents=list(data.get("intents", [])),
            index=int(data.get("index", 0)),
            agent_id=data.get("agent_id"),
            messages=list(data.get("messages", [])),
            pending_call_id=data.get("pending_call_id"),
            escalate=data.get("escalate"),
            tokens_before=int(data.get("tokens_before", 0)),
            pii=dict(data.get("pii", {})),
        )
