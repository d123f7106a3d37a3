"""The staff stream ``/ws/escalations/`` (docs/escalations.md): the live queue for support
agents, and the chat of the conversation they are handling. Thin: access at connect, frames
checked and handled in ``escalations.protocol``."""

from __future__ import annotations

from typing import Any

import structlog
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth.models import User

from config.errors import ApplicationError
from config.hub import NO_LAYER, Encoded, encode_frame, hub
from config.logging import bind_ws_context
from conversations.realtime import conversation_group
from escalations import protocol
from escalations.realtime import STAFF_GROUP
from escalations.selectors import user_may_view_queue

logger = structlog.get_logger(__name__)

CLOSE_FORBIDDEN = 4403


class EscalationQueueConsumer(AsyncWebsocketConsumer):
    channel_layer_alias = NO_LAYER  # frames arrive through the process hub (config.hub)
    user: User
    watching: str | None = None
    live: bool = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.backlog: list[str] = []

    async def connect(self) -> None:
        user = self.scope.get("user")
        allowed = await database_sync_to_async(user_may_view_queue)(user)
        bind_ws_context(self.scope)
        if not allowed:
            logger.warning("escalation_socket_refused")
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.user = user
        await self.accept()
        # Join the process's relay, then read the snapshot: nothing falls in between. Frames
        # relayed meanwhile wait, and follow the snapshot in order (repeats are harmless).
        relay = hub()
        if relay is not None:
            await relay.join(STAFF_GROUP, self)
        await self.send_json(await database_sync_to_async(protocol.queue_snapshot)(self.user))
        while self.backlog:
            await self.send(text_data=self.backlog.pop(0))
        self.live = True

    async def relay(self, group: str, event: dict[str, Any], encoded: Encoded) -> None:
        if group == STAFF_GROUP:
            texts = [encoded.get("staff", lambda: encode_frame(event["frame"]))]
        elif self.watching is not None and group == conversation_group(self.watching):
            # The watched conversation's chat frames, wrapped: the same text for every watcher.
            watched = self.watching
            texts = encoded.get(
                "watched",
                lambda: [
                    encode_frame({"type": "chat", "conversation_id": watched, "frame": frame})
                    for frame in event["frames"]
                ],
            )
        else:
            return  # a conversation this socket stopped watching
        for text in texts:
            if self.live:
                await self.send(text_data=text)
            else:
                self.backlog.append(text)

    async def disconnect(self, code: int) -> None:
        relay = hub()
        if relay is not None:
            await relay.leave(STAFF_GROUP, self)
        await self.watch(None)

    async def watch(self, conversation_id: str | None) -> None:
        """Follow at most one conversation: the one on the agent's handoff page."""
        relay = hub()
        if relay is not None and self.watching is not None:
            await relay.leave(conversation_group(self.watching), self)
        self.watching = conversation_id
        if relay is not None and conversation_id is not None:
            await relay.join(conversation_group(conversation_id), self)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            await protocol.dispatch(self, protocol.parse_frame(text_data))
        except ApplicationError as exc:
            # The chat protocol's error shape: code, message, then any details.
            await self.send_json(
                {"type": "error", "code": str(exc.code), "message": exc.message, **exc.details}
            )

    async def send_json(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=encode_frame(frame))
