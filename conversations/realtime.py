"""Group names and frames for the chat socket (docs/websocket-protocol.md).

Durable frames are built from stored :class:`Message` rows, so a live frame and the same frame
replayed by ``resume`` are identical.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from conversations.models import Message


def conversation_group(conversation_id: UUID | str) -> str:
    return f"conversation.{conversation_id}"


def message_frame(message: Message) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": message.kind, "seq": message.seq, "id": message.pk}
    if message.kind in (
        Message.Kind.INTERRUPT_RESOLVED,
        Message.Kind.INTERRUPT_EXPIRED,
        Message.Kind.INTERRUPT,
        Message.Kind.MESSAGE,
        Message.Kind.CLARIFICATION,
        Message.Kind.ESCALATED,
        Message.Kind.STAFF_JOINED,
    ):
        frame["role"] = message.role
        frame["content"] = message.content
    if message.client_id:
        frame["client_id"] = message.client_id
    if message.agent_id and message.role == Message.Role.ASSISTANT:
        frame["agent"] = message.payload.get("agent_name", "")
    if message.role == Message.Role.STAFF:
        frame["author"] = message.payload.get("author_name", "Support")
    frame["created_at"] = message.created_at.isoformat()
    frame.update(message.payload.get("frame", {}))
    return frame


async def send_frame(conversation_id: UUID | str, frame: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(
            conversation_group(conversation_id), {"type": "chat.frame", "frame": frame}
        )


def broadcast_on_commit(conversation_id: UUID | str, frame: dict[str, Any]) -> None:
    """Send after the transaction commits, so no client sees a frame that was rolled back."""
    transaction.on_commit(lambda: async_to_sync(send_frame)(conversation_id, frame))
