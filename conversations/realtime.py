"""Group names and frames for the chat socket (docs/websocket-protocol.md).

Durable frames are built from stored :class:`Message` rows, so a live frame and the same frame
replayed by ``resume`` are identical.

Frames go out as ``chat.frames`` events carrying a list: code running in an :class:`Outbox`
(the agent runtime's database steps, the chat socket's receive) gathers the frames its
committed writes produce and publishes them in one channel-layer message after the step,
instead of one blocking hop from the ORM thread back to the event loop per frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from uuid import UUID

from asgiref.sync import async_to_sync
from django.db import transaction

from config.hub import publish
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
        Message.Kind.RESOLUTION_CHECK,
        Message.Kind.RESOLUTION_ANSWERED,
        Message.Kind.CLOSED,
        Message.Kind.REOPENED,
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


async def send_frames(conversation_id: UUID | str, frames: list[dict[str, Any]]) -> None:
    if frames:
        group = conversation_group(conversation_id)
        # "group" tells each process's hub which sockets it is for (config.hub).
        await publish(group, {"type": "chat.frames", "group": group, "frames": frames})


async def send_frame(conversation_id: UUID | str, frame: dict[str, Any]) -> None:
    await send_frames(conversation_id, [frame])


class Outbox:
    """Frames waiting to be published, in order, per conversation; and the analytics events of
    the same work waiting to be stored (by the next step that stores them)."""

    def __init__(self) -> None:
        self.frames: list[tuple[str, dict[str, Any]]] = []
        self.events: list[Any] = []

    def add(self, conversation_id: UUID | str, frame: dict[str, Any]) -> None:
        self.frames.append((str(conversation_id), frame))

    async def flush(self) -> None:
        while self.frames:
            pending, self.frames = self.frames, []
            by_conversation: dict[str, list[dict[str, Any]]] = {}
            for conversation_id, frame in pending:
                by_conversation.setdefault(conversation_id, []).append(frame)
            for conversation_id, frames in by_conversation.items():
                await send_frames(conversation_id, frames)


class _Collecting:
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.open = True


_collecting: ContextVar[_Collecting | None] = ContextVar("chat_collecting", default=None)


@contextmanager
def collecting(outbox: Outbox) -> Iterator[Outbox]:
    """Within the block (sync code, e.g. in the ORM thread), broadcasts land in ``outbox``;
    the async caller publishes them with :meth:`Outbox.flush`."""
    scope = _Collecting(outbox)
    token = _collecting.set(scope)
    try:
        yield outbox
    finally:
        scope.open = False
        _collecting.reset(token)


def frame_emit(conversation_id: UUID | str, frame: dict[str, Any]) -> None:
    """A frame that is not the result of a write (``turn_end``, streamed text): into the
    outbox when collecting, else sent at once."""
    scope = _collecting.get()
    if scope is not None:
        scope.outbox.add(conversation_id, frame)
    else:
        async_to_sync(send_frame)(conversation_id, frame)


def broadcast_on_commit(conversation_id: UUID | str, frame: dict[str, Any]) -> None:
    """Send after the transaction commits, so no client sees a frame that was rolled back."""
    scope = _collecting.get()
    if scope is None:
        transaction.on_commit(lambda: async_to_sync(send_frame)(conversation_id, frame))
        return

    def later() -> None:
        if scope.open:
            scope.outbox.add(conversation_id, frame)
        else:
            # Committed after the step ended (an outer transaction): nobody flushes it now.
            async_to_sync(send_frame)(conversation_id, frame)

    transaction.on_commit(later)
