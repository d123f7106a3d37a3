from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from ninja import Field, Schema
from pydantic import field_validator

from config.schemas import BodyIn
from escalations.models import Escalation

StatusName = Literal["waiting", "claimed", "resolved", "handed_back", "cancelled"]
PriorityName = Literal["high", "normal", "low"]


class StaffOut(Schema):
    id: int
    username: str
    name: str


def _staff(user: Any) -> dict[str, Any] | None:
    if user is None:
        return None
    return {
        "id": user.pk,
        "username": user.get_username(),
        "name": user.get_full_name() or user.get_username(),
    }


class EscalationOut(Schema):
    id: int
    conversation_id: UUID
    status: StatusName
    trigger: str
    reason: str
    priority: PriorityName
    priority_reason: str
    claimed_by: StaffOut | None
    claimed_at: datetime | None
    first_staff_message_at: datetime | None
    resolved_at: datetime | None
    handed_back_at: datetime | None
    cancelled_at: datetime | None
    notification_status: str
    created_at: datetime

    @staticmethod
    def resolve_claimed_by(obj: Escalation) -> dict[str, Any] | None:
        return _staff(obj.claimed_by)


class EscalationDetailOut(EscalationOut):
    packet: dict[str, Any] = Field(description="The handoff packet (docs/escalations.md)")
    notification_attempts: int
    notification_error: str


class EscalationFilters(Schema):
    status: StatusName | None = None
    priority: PriorityName | None = None


class StaffMessageIn(BodyIn):
    content: str = Field(min_length=1, max_length=10_000)

    @field_validator("content")
    @classmethod
    def not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("The message is empty.")
        return value


class StaffMessageOut(Schema):
    id: int
    seq: int
    role: str
    content: str
    created_at: datetime
