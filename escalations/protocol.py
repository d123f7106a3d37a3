"""Client frames of the staff stream ``/ws/escalations/``: validation and dispatch
(docs/escalations.md). A bad frame raises an :class:`ApplicationError`, sent back as an ``error``
frame; the socket stays open."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.models import User

from config.errors import ApplicationError, ErrorCode
from escalations.models import Escalation

if TYPE_CHECKING:
    from escalations.consumers import EscalationQueueConsumer

CLIENT_TYPES = ("ping", "snapshot", "watch", "unwatch", "message")
VIEW_CONVERSATION = "conversations.view_conversation"


def parse_frame(text_data: str | None) -> dict[str, Any]:
    if text_data is None:
        raise ApplicationError(ErrorCode.INVALID_FRAME, "Send JSON text frames, not binary.")
    if len(text_data.encode()) > settings.CHAT_MAX_FRAME_BYTES:
        raise ApplicationError(ErrorCode.FRAME_TOO_LARGE, "The frame is too large.")
    try:
        frame = json.loads(text_data)
    except ValueError as exc:
        raise ApplicationError(ErrorCode.MALFORMED_JSON, "The frame is not valid JSON.") from exc
    if not isinstance(frame, dict):
        raise ApplicationError(ErrorCode.INVALID_FRAME, "A frame must be a JSON object.")
    if frame.get("type") not in CLIENT_TYPES:
        raise ApplicationError(
            ErrorCode.UNKNOWN_TYPE,
            f"Unknown frame type {frame.get('type')!r}; expected one of {', '.join(CLIENT_TYPES)}.",
        )
    return frame


def queue_snapshot(user: User) -> dict[str, Any]:
    from escalations.realtime import queue_frame, staff_name
    from escalations.selectors import (
        DECIDE_PERMISSION,
        escalation_queue,
        staff_interrupts_pending,
        user_is_supervisor,
    )
    from escalations.services import escalations_cancel_closed

    escalations_cancel_closed()
    interrupts = staff_interrupts_pending() if user.has_perm(DECIDE_PERMISSION) else []
    me = {"id": user.pk, "name": staff_name(user), "supervisor": user_is_supervisor(user)}
    return queue_frame(escalation_queue(), interrupts, me=me)


def _escalation_id(frame: dict[str, Any]) -> int:
    value = frame.get("escalation_id")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ApplicationError(ErrorCode.INVALID_FRAME, "escalation_id must be a positive integer.")
    return value


def _escalation_for(user: User, escalation_id: int, permission: str) -> Escalation:
    from escalations.selectors import escalation_get

    if not user.has_perm(permission):
        raise ApplicationError(
            ErrorCode.PERMISSION_DENIED, f"Your role lacks the '{permission}' permission."
        )
    try:
        return escalation_get(escalation_id=escalation_id)
    except Escalation.DoesNotExist as exc:
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such escalation.") from exc


def _missed(conversation_id: str, after: int) -> list[dict[str, Any]]:
    from conversations.realtime import message_frame
    from conversations.selectors import messages_after

    frames: list[dict[str, Any]] = []
    while True:
        batch = messages_after(conversation_id=conversation_id, after=after)
        frames += [message_frame(m) for m in batch]
        if len(batch) < 500:
            return frames
        after = batch[-1].seq


async def dispatch(consumer: EscalationQueueConsumer, frame: dict[str, Any]) -> None:
    await _HANDLERS[frame["type"]](consumer, frame)


async def _ping(consumer: EscalationQueueConsumer, frame: dict[str, Any]) -> None:
    await consumer.send_json({"type": "pong"})


async def _snapshot(consumer: EscalationQueueConsumer, frame: dict[str, Any]) -> None:
    await consumer.send_json(await database_sync_to_async(queue_snapshot)(consumer.user))


async def _watch(consumer: EscalationQueueConsumer, frame: dict[str, Any]) -> None:
    """Follow one escalation's conversation live: its chat frames arrive wrapped in ``chat``
    frames. Everything after ``after`` is replayed first (clients drop seqs they have)."""
    after = frame.get("after", 0)
    if isinstance(after, bool) or not isinstance(after, int) or after < 0:
        raise ApplicationError(ErrorCode.INVALID_FRAME, "after must be a sequence number ≥ 0.")
    escalation = await database_sync_to_async(_escalation_for)(
        consumer.user, _escalation_id(frame), VIEW_CONVERSATION
    )
    conversation_id = str(escalation.conversation_id)
    await consumer.watch(conversation_id)
    missed = await database_sync_to_async(_missed)(conversation_id, after)
    for item in missed:
        await consumer.send_json(
            {"type": "chat", "conversation_id": conversation_id, "frame": item}
        )
    await consumer.send_json(
        {
            "type": "watching",
            "escalation_id": escalation.pk,
            "conversation_id": conversation_id,
            "last_seq": missed[-1]["seq"] if missed else after,
        }
    )


async def _unwatch(consumer: EscalationQueueConsumer, frame: dict[str, Any]) -> None:
    await consumer.watch(None)


def _send_message(user: User, escalation_id: int, content: Any) -> int:
    from escalations.selectors import ACT_PERMISSION
    from escalations.services import escalation_message_send

    if not isinstance(content, str):
        raise ApplicationError(ErrorCode.INVALID_FRAME, "content must be a string.")
    escalation = _escalation_for(user, escalation_id, ACT_PERMISSION)
    return escalation_message_send(escalation=escalation, user=user, content=content).seq


async def _message(consumer: EscalationQueueConsumer, frame: dict[str, Any]) -> None:
    ref = frame.get("ref")
    seq = await database_sync_to_async(_send_message)(
        consumer.user, _escalation_id(frame), frame.get("content")
    )
    await consumer.send_json(
        {"type": "sent", "ref": ref if isinstance(ref, str) else None, "seq": seq}
    )


_HANDLERS = {
    "ping": _ping,
    "snapshot": _snapshot,
    "watch": _watch,
    "unwatch": _unwatch,
    "message": _message,
}
