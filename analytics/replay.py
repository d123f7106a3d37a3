"""Replay (SPEC §10): a conversation as a timeline of steps, read from the record (timeline
items, tool calls, interrupts and the analytics events). Nothing is executed again: no model,
no upstream API, no write. Arguments and results are shown with secrets redacted and PII
masked, as everywhere else staff read them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from analytics.models import Event, EventType
from config.pii import mask
from config.redaction import redact
from conversations.models import Message
from conversations.selectors import replay_records

PAGE_SIZE = 20
# Events that add a step the timeline items do not show.
_EVENT_STEPS = (
    EventType.AGENT_SELECTED,
    EventType.MODEL_CALLED,
    EventType.ESCALATION_CLAIMED,
    EventType.CONVERSATION_REOPENED,
)


@dataclass(frozen=True)
class ReplayPage:
    conversation_id: str
    title: str
    state: str
    page: int
    pages: int
    total: int
    steps: list[dict[str, Any]]


def _clean(value: Any) -> Any:
    return mask(redact(value))


def _message_step(message: Message, calls: dict[int, Any], interrupts: dict[str, Any]) -> dict:
    frame = message.payload.get("frame", {})
    step: dict[str, Any] = {"at": message.created_at, "seq": message.seq, "detail": {}}
    kind = message.kind
    if kind == Message.Kind.MESSAGE:
        kinds: dict[str, str] = {
            Message.Role.USER: "customer_message",
            Message.Role.ASSISTANT: "reply",
            Message.Role.STAFF: "staff_message",
        }
        step["kind"] = kinds.get(message.role, "system_message")
        step["title"] = (
            message.payload.get("agent_name")
            or message.payload.get("author_name")
            or message.get_role_display()
        )
        step["text"] = mask(message.content)
        return step
    if kind in (Message.Kind.TOOL_CALL, Message.Kind.TOOL_RESULT):
        call = calls.get(frame.get("call_id"))
        step["kind"] = kind
        step["title"] = call.operation_name if call else frame.get("operation", "")
        step["text"] = frame.get("summary", "")
        if call is not None:
            if kind == Message.Kind.TOOL_CALL:
                step["detail"] = {"arguments": _clean(call.arguments)}
            else:
                step["detail"] = {
                    "status": call.status,
                    "http_status": call.http_status,
                    "latency_ms": call.latency_ms,
                    "attempts": call.attempts,
                    "error_kind": call.error_kind,
                    "result": _clean(call.result),
                }
        return step
    if kind in (Message.Kind.INTERRUPT, Message.Kind.INTERRUPT_RESOLVED):
        interrupt = interrupts.get(str(frame.get("interrupt_id")))
        step["kind"] = "interrupt" if kind == Message.Kind.INTERRUPT else "decision"
        step["title"] = interrupt.operation_name if interrupt else frame.get("operation", "")
        step["text"] = mask(message.content or frame.get("summary", ""))
        if interrupt is not None:
            step["detail"] = {
                "approver": interrupt.approver,
                "status": interrupt.status,
                "arguments": _clean(interrupt.arguments),
            }
            if kind == Message.Kind.INTERRUPT_RESOLVED and interrupt.decided_at:
                waited = interrupt.decided_at - interrupt.created_at
                step["detail"]["decision"] = frame.get("decision")
                step["detail"]["by"] = frame.get("by")
                step["detail"]["latency_ms"] = waited.total_seconds() * 1000
        return step
    other: dict[str, str] = {
        Message.Kind.ESCALATED: "escalation",
        Message.Kind.STAFF_JOINED: "staff_joined",
    }
    step["kind"] = other.get(kind, kind)
    step["title"] = message.get_kind_display()
    step["text"] = mask(message.content)
    step["detail"] = _clean({k: v for k, v in frame.items() if k != "turn_id"})
    return step


def _event_step(event: Event) -> dict[str, Any]:
    step: dict[str, Any] = {"at": event.occurred_at, "seq": None}
    if event.type == EventType.AGENT_SELECTED:
        step.update(kind="agent_selection", title=event.agent, text=event.data.get("reason", ""))
        step["detail"] = {"scores": event.data.get("scores", {})}
    elif event.type == EventType.MODEL_CALLED:
        step.update(kind="model_call", title=f"{event.backend} {event.model}".strip())
        step["text"] = "ok" if event.outcome == "ok" else f"failed: {event.outcome}"
        step["detail"] = {
            "agent": event.agent,
            "backend": event.backend,
            "model": event.model,
            "outcome": event.outcome,
            "latency_ms": event.latency_ms,
            "prompt_tokens": event.prompt_tokens,
            "completion_tokens": event.completion_tokens,
            "cost": float(event.cost),
        }
    elif event.type == EventType.ESCALATION_CLAIMED:
        step.update(kind="escalation_claimed", title="Claimed", text="")
        step["detail"] = {"latency_ms": event.latency_ms}
    else:
        step.update(kind="reopened", title="Reopened", text="")
        step["detail"] = {"revoked": event.data.get("revoked", "")}
    return step


def conversation_replay(*, conversation_id: UUID | str, page: int = 1) -> ReplayPage:
    """One page (``PAGE_SIZE`` steps) of the conversation's timeline, oldest first. Raises
    ``Conversation.DoesNotExist``."""
    conversation, messages, calls, interrupts = replay_records(conversation_id=conversation_id)
    steps = [_message_step(m, calls, interrupts) for m in messages]
    events = Event.objects.filter(conversation_id=conversation.pk, type__in=_EVENT_STEPS)
    steps += [_event_step(e) for e in events]
    # Stable: an event and the item it precedes keep their recorded order.
    steps.sort(key=lambda step: (step["at"], step["seq"] is not None, step["seq"] or 0))
    total = len(steps)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(max(1, page), pages)
    chunk = steps[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    for number, step in enumerate(chunk, start=(page - 1) * PAGE_SIZE + 1):
        step["number"] = number
        step["at"] = step["at"].isoformat() if isinstance(step["at"], datetime) else step["at"]
    return ReplayPage(
        conversation_id=str(conversation.pk),
        title=str(conversation),
        state=conversation.state,
        page=page,
        pages=pages,
        total=total,
        steps=chunk,
    )
