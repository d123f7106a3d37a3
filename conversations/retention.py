"""Message retention (SPEC §12, issue 18 item 10): text is stored as typed, which staff need
while a conversation is live; after ``MESSAGE_RETENTION_DAYS`` the scheduler masks it.

Masked (``config.pii``: emails, phones, cards, IBANs become placeholders) for rows older than
the cut-off: message text and frame payloads, tool-call arguments, results and error detail,
the interrupts that showed those arguments, the turns' kept model conversation (dropped: it
repeats all of the above) and the conversation's remembered facts. Analytics events keep their
figures (their data was masked when recorded); rows, counts, tokens and latencies stay. Each
row is masked once (``masked_at``), in batches, so a run's cost follows the new rows only.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.pii import mask, mask_text
from conversations.models import Conversation, Interrupt, Message, ToolCall, Turn

logger = structlog.get_logger(__name__)

BATCH = 500
# Turn.plan keys that hold conversation text (the model conversation, PII placeholders).
_PLAN_TEXT_KEYS = ("messages", "pii")


def retention_cutoff(*, now: datetime | None = None) -> datetime | None:
    """Rows created before this are masked; ``None`` when retention is off (0 days)."""
    days = settings.MESSAGE_RETENTION_DAYS
    if days <= 0:
        return None
    return (now or timezone.now()) - timedelta(days=days)


def messages_retention_apply(*, now: datetime | None = None, batch: int = BATCH) -> dict[str, int]:
    """Mask what is past retention; returns how many messages and tool calls were masked."""
    cutoff = retention_cutoff(now=now)
    if cutoff is None:
        return {"messages": 0, "tool_calls": 0}
    stamp = now or timezone.now()
    done = {"messages": 0, "tool_calls": 0}
    for kind, step in (("messages", _messages_batch), ("tool_calls", _tool_calls_batch)):
        while True:
            masked = step(cutoff, stamp, batch)
            done[kind] += masked
            if masked < batch:
                break
    if any(done.values()):
        logger.info("retention_applied", cutoff=cutoff.isoformat(), **done)
    return done


def _due[T: (Message, ToolCall)](model: type[T], cutoff: datetime, batch: int) -> list[T]:
    """The next rows past retention not masked yet, locked (two schedulers skip each other's)."""
    return list(
        model.objects.select_for_update(skip_locked=True)
        .filter(created_at__lt=cutoff, masked_at__isnull=True)
        .order_by("pk")[:batch]
    )


def _messages_batch(cutoff: datetime, stamp: datetime, batch: int) -> int:
    with transaction.atomic():
        rows = _due(Message, cutoff, batch)
        for row in rows:
            row.content = mask_text(row.content)
            row.payload = mask(row.payload)
            row.masked_at = stamp
        Message.objects.bulk_update(rows, ["content", "payload", "masked_at"])
        conversation_ids = {row.conversation_id for row in rows}
        for conversation in Conversation.objects.filter(pk__in=conversation_ids):
            Conversation.objects.filter(pk=conversation.pk).update(
                context=mask(conversation.context)
            )
        turn_ids = {row.turn_id for row in rows if row.turn_id is not None}
        _turns_mask(turn_ids)
    return len(rows)


def _tool_calls_batch(cutoff: datetime, stamp: datetime, batch: int) -> int:
    with transaction.atomic():
        rows = _due(ToolCall, cutoff, batch)
        for row in rows:
            row.arguments = mask(row.arguments)
            row.result = mask(row.result)
            row.error_message = mask_text(row.error_message)
            row.masked_at = stamp
        ToolCall.objects.bulk_update(rows, ["arguments", "result", "error_message", "masked_at"])
        interrupts = list(Interrupt.objects.filter(tool_call__in=rows))
        for interrupt in interrupts:
            interrupt.arguments = mask(interrupt.arguments)
            interrupt.summary = mask_text(interrupt.summary)
        Interrupt.objects.bulk_update(interrupts, ["arguments", "summary"])
        _turns_mask({row.turn_id for row in rows})
    return len(rows)


def _turns_mask(turn_ids: set[int]) -> None:
    turns = list(Turn.objects.filter(pk__in=turn_ids))
    for turn in turns:
        plan = {k: v for k, v in (turn.plan or {}).items() if k not in _PLAN_TEXT_KEYS}
        turn.plan = mask(plan)
        turn.error_message = mask_text(turn.error_message)
    Turn.objects.bulk_update(turns, ["plan", "error_message"])
