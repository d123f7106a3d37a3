"""Schemas of the conversations API (headless chat, interrupts, agents)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from django.conf import settings
from ninja import Field, Schema
from pydantic import AfterValidator, field_validator

from config.schemas import BodyIn, iso_datetime_text
from conversations.models import Agent, Conversation, Message

StateName = Literal[
    "ai_active", "awaiting_approval", "escalated", "human_active", "resolved", "closed"
]
MAX_METADATA_BYTES = 8 * 1024


def _wait_bounded(value: float) -> float:
    if value > settings.API_MAX_WAIT_SECONDS:
        raise ValueError(f"wait may be at most {settings.API_MAX_WAIT_SECONDS:g} seconds")
    return value


# Seconds a request may wait for a turn: 0 to API_MAX_WAIT_SECONDS (read when validating).
Wait = Annotated[float, Field(ge=0), AfterValidator(_wait_bounded)]


class CustomerIn(BodyIn):
    """The customer the program vouches for (SPEC §3): the conversation starts verified."""

    id: str = Field(min_length=1, max_length=200, description="Your user id for the customer")
    email: str = Field(min_length=3, max_length=254)
    name: str = Field("", max_length=200)


class ConversationIn(BodyIn):
    customer: CustomerIn | None = Field(
        None, description="Omit for an anonymous customer (who cannot approve actions)."
    )
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Returned as given; at most 8 KiB of JSON."
    )

    @field_validator("metadata")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(value, default=str).encode()) > MAX_METADATA_BYTES:
            raise ValueError(f"metadata may be at most {MAX_METADATA_BYTES} bytes of JSON")
        return value


class CustomerOut(Schema):
    verified: bool
    source: str
    id: str
    email: str
    name: str


class ConversationOut(Schema):
    id: UUID
    state: StateName
    title: str
    agent: str | None = Field(description="Slug of the agent that answered last")
    customer: CustomerOut
    metadata: dict[str, Any]
    integration: str
    last_seq: int
    turn_count: int
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_agent(obj: Conversation) -> str | None:
        return obj.current_agent.slug if obj.current_agent else None

    @staticmethod
    def resolve_customer(obj: Conversation) -> dict[str, Any]:
        return {
            "verified": obj.is_verified,
            "source": obj.identity_source,
            "id": obj.customer_id,
            "email": obj.customer_email,
            "name": obj.customer_name,
        }


class ConversationPage(Schema):
    items: list[ConversationOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")


class ConversationFilters(Schema):
    state: StateName | None = None
    agent: str | None = Field(
        None, max_length=60, pattern=r"^[-a-zA-Z0-9_]+$", description="Agent slug"
    )
    escalated: bool | None = Field(None, description="Has it ever been handed to a human?")
    updated_since: datetime | None = None
    cursor: str | None = Field(None, max_length=200)
    limit: int = Field(50, ge=1, le=200)

    @field_validator("updated_since", mode="before")
    @classmethod
    def _iso(cls, value: Any) -> Any:
        return iso_datetime_text(value)


class MessageOut(Schema):
    id: int
    seq: int
    kind: str
    role: str
    content: str
    created_at: datetime
    data: dict[str, Any] = Field(description="The frame's extra fields (interrupt id, …)")

    @staticmethod
    def resolve_data(obj: Message) -> dict[str, Any]:
        frame = obj.payload.get("frame", {})
        return frame if isinstance(frame, dict) else {}


class MessagePage(Schema):
    items: list[MessageOut]
    next_after: int | None = Field(description="Pass as `after` for the next page")


class MessagesQuery(Schema):
    after: int = Field(0, ge=0, le=2_000_000_000, description="Messages with a greater seq")
    limit: int = Field(100, ge=1, le=500)


class ConversationDetailOut(ConversationOut):
    messages: MessagePage

    @staticmethod
    def resolve_messages(obj: Conversation) -> dict[str, Any]:
        # Set by the operation (``Conversation.messages`` is the related manager).
        page: dict[str, Any] = obj.api_messages  # type: ignore[attr-defined]
        return page


class MessageIn(BodyIn):
    content: str = Field(min_length=1, max_length=10_000)
    client_id: str | None = Field(
        None, min_length=1, max_length=64, description="De-duplicates a resend"
    )
    wait: Wait = Field(
        10.0,
        description="Seconds to wait for the reply; past it the answer is 202 with a poll link",
    )

    @field_validator("content")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the message is empty")
        return value


class InterruptOut(Schema):
    id: UUID
    conversation_id: UUID
    operation: str = Field(alias="operation_name")
    arguments: dict[str, Any]
    arguments_hash: str = Field(description="Send it back to approve exactly these arguments")
    summary: str
    approver: Literal["user", "staff"]
    status: Literal["pending", "approved", "rejected", "expired"]
    expires_at: datetime
    decided_at: datetime | None
    created_at: datetime


class ReplyOut(Schema):
    status: Literal["running", "completed", "failed", "awaiting_approval", "waiting", "skipped"]
    message: MessageOut = Field(description="The customer's message as stored")
    replies: list[MessageOut] = Field(description="What followed it: assistant and system items")
    pending_interrupts: list[InterruptOut]
    poll: str | None = Field(description="While running: GET it for the reply")


class DecisionIn(BodyIn):
    arguments_hash: str | None = Field(
        None, max_length=64, description="Required to approve: the interrupt's arguments_hash"
    )
    wait: Wait = Field(10.0, description="Seconds to wait for what follows the decision")


class DecisionOut(Schema):
    interrupt: InterruptOut
    replies: list[MessageOut] = Field(description="What followed the decision so far")
    state: StateName


class InterruptFilters(Schema):
    conversation_id: UUID | None = None
    approver: Literal["user", "staff"] | None = None


class AgentOut(Schema):
    slug: str
    name: str
    description: str
    permission: Literal["read", "write"]
    operations: list[str]
    system_prompt: str
    tone: str
    greeting: str
    escalation_message: str
    backend: str
    model: str
    is_fallback: bool
    enabled: bool
    updated_at: datetime

    @staticmethod
    def resolve_operations(obj: Agent) -> list[str]:
        return sorted(op.operation_id for op in obj.operations.all())


class AgentPatch(BodyIn):
    description: str | None = Field(None, min_length=1, max_length=5000)
    system_prompt: str | None = Field(None, max_length=20_000)
    tone: str | None = Field(None, max_length=200)
    greeting: str | None = Field(None, max_length=2000)
    escalation_message: str | None = Field(None, max_length=2000)
    operations: list[str] | None = Field(None, max_length=500, description="Operation ids")
    backend: str | None = Field(None, max_length=50)
    model: str | None = Field(None, max_length=100)
    enabled: bool | None = None
