"""The staff stream ``/ws/escalations/`` (docs/escalations.md): the live queue for support
agents, and the chat of the conversation they are handling. Thin: access at connect, frames
checked and handled in ``escalations.protocol``."""

from __future__ import annotations

import json
from typing import Any

import structlog
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth.models import User

from config.errors import ApplicationError
from config.logging import bind_ws_context
from conversations.realtime import conversation_group
from escalations import protocol
from escalations.hub import hub_for
from escalations.selectors import user_may_view_queue

logger = structlog.get_logger(__name__)

CLOSE_FORBIDDEN = 4403


class EscalationQueueConsumer(AsyncWebsocketConsumer):
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
        await hub_for(self.channel_layer).join(self)
        await self.send_json(await database_sync_to_async(protocol.queue_snapshot)(self.user))
        while self.backlog:
            await self.send(text_data=self.backlog.pop(0))
        self.live = True

    async def relay(self, text: str) -> None:
        if self.live:
            await self.send(text_data=text)
        else:
            self.backlog.append(text)

    async def disconnect(self, code: int) -> None:
        if self.channel_layer is not None:
            await hub_for(self.channel_layer).leave(self)
            await self.watch(None)

    async def watch(self, conversation_id: str | None) -> None:
        """Follow at most one conversation: the one on the agent's handoff page."""
        if self.watching is not None:
            await self.channel_layer.group_discard(
                conversation_group(self.watching), self.channel_name
            )
        self.watching = conversation_id
        if conversation_id is not None:
            await self.channel_layer.group_add(
                conversation_group(conversation_id), self.channel_name
            )

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            await protocol.dispatch(self, protocol.parse_frame(text_data))
        except ApplicationError as exc:
            # The chat protocol's error shape: code, message, then any details.
            await self.send_json(
                {"type": "error", "code": str(exc.code), "message": exc.message, **exc.details}
            )

    async def send_json(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(frame, separators=(",", ":")))

    async def chat_frame(self, event: dict[str, Any]) -> None:
        if self.watching is not None:
            await self.send_json(
                {"type": "chat", "conversation_id": self.watching, "frame": event["frame"]}
            )
