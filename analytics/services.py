"""Recording events (SPEC §9). Every write path calls :func:`event_record`; the data is masked
for PII before it is stored.

Inside :func:`events_batched` events are gathered and stored with one ``INSERT`` when the block
ends: a chat turn records five or six of them, and one statement instead of six is a measurable
part of a turn's cost (docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal
from typing import Any
from uuid import UUID

import structlog

from analytics.models import Event, EventType
from config.pii import mask

logger = structlog.get_logger(__name__)

_batch: ContextVar[list[Event] | None] = ContextVar("analytics_event_batch", default=None)


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
) -> None:
    event = Event(
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
    batch = _batch.get()
    if batch is None:
        event.save(force_insert=True)
    else:
        batch.append(event)


@contextmanager
def events_batched(*, into: list[Event] | None = None, store: bool = True) -> Iterator[None]:
    """Store the events recorded in the block with one insert at its end (a nested block joins
    the outer one). Events are stored even when the block fails: the steps they describe
    happened, and a failed turn is exactly what analytics must show.

    ``into`` gathers them in the caller's list, which outlives the block; with ``store=False``
    they stay there for a later block to store (a chat turn stores its steps' events once, at
    its end)."""
    if _batch.get() is not None:
        yield
        return
    events: list[Event] = [] if into is None else into
    token = _batch.set(events)
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        _batch.reset(token)
        if events and store:
            try:
                Event.objects.bulk_create(events)
                events.clear()
            except Exception:
                if not failed:
                    raise
                # Never hide the block's own error behind the events' (e.g. a lost database).
                logger.exception("events_store_failed", count=len(events))
