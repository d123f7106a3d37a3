"""Recording events (SPEC §9). Every write path calls :func:`event_record`; the data is masked
for PII before it is stored."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

import structlog

from analytics.models import Event, EventType
from config.pii import mask

logger = structlog.get_logger(__name__)


def event_record(
    *,
    type: EventType,
    conversation_id: UUID | str | None = None,
    agent: str = "",
    backend: str = "",
    model: str = "",
    operation: str = "",
    outcome: str = "",
    latency_ms: float | None = None,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    cost: Decimal | float = 0,
    data: dict[str, Any] | None = None,
) -> Event:
    return Event.objects.create(
        type=type,
        conversation_id=conversation_id,
        agent=agent[:100],
        backend=backend[:50],
        model=model[:100],
        operation=operation[:100],
        outcome=outcome[:40],
        latency_ms=latency_ms,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost=Decimal(str(cost)),
        data=mask(data or {}),
    )
