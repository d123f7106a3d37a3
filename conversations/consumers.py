"""The chat socket, ``/ws/chat/<conversation_id>/`` (docs/websocket-protocol.md). Thin: it
checks frames and access, then calls services; turns run in ``conversations.turns``."""

from __future__ import annotations

from typing import Any

import structlog
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from config.errors import ApplicationError, ErrorCode
from config.hub import NO_LAYER, Encoded, encode_frame, hub
from config.logging import bind_ws_context
from conversations import protocol, socket_limits
from conversations.realtime import conversation_group
from escalations.realtime import SESSION_EVENT_TYPE, scope_session, staff_user_group
from escalations.selectors import user_session_valid

logger = structlog.get_logger(__name__)

CLOSE_FORBIDDEN = 4403
CLOSE_FLOODING = 4429
CLOSE_SESSION_ENDED = 4401


class ChatConsumer(AsyncWebsocketConsumer):
    channel_layer_alias = NO_LAYER  # frames arrive through the process hub (config.hub)
    conversation_id: str
    strikes: int = 0
    joined: bool = False
    # Set when access came from a signed-in session (the conversation is the user's): the
    # socket then ends with that session (logout, deactivation, password change).
    session_user_id: int | None = None
    session_key: str | None = None
    session_hash: str = ""
    ended: bool = False
    client: socket_limits.Client | None = None  # set once the socket counts as open

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Live frames wait here until "ready" is out, and while a client frame is handled, so
        # they never land in the middle of a reply (a resume's replay, say).
        self.held: list[str] | None = []

    async def connect(self) -> None:
        from conversations.selectors import conversation_get_for_visitor
        from conversations.visitors import visitor_from_scope

        self.conversation_id = str(self.scope["url_route"]["kwargs"]["conversation_id"])
        bind_ws_context(self.scope, conversation_id=self.conversation_id)
        visitor_id = visitor_from_scope(self.scope)
        client = socket_limits.Client.from_scope(self.scope, visitor_id)
        refusal = await sync_to_async(socket_limits.connect_check)(client)
        if refusal is not None:
            await self.refuse_limited(refusal)
            return
        self.client = client
        conversation = await database_sync_to_async(conversation_get_for_visitor)(
            conversation_id=self.conversation_id,
            visitor_id=visitor_id,
            user=self.scope.get("user"),
        )
        if conversation is None:
            logger.warning("chat_socket_refused")
            await self.close(code=CLOSE_FORBIDDEN)
            return
        if conversation.user_id is not None:
            self.session_user_id = conversation.user_id
            self.session_key, self.session_hash = await database_sync_to_async(scope_session)(
                self.scope
            )
        relay = hub()
        if relay is not None:
            await relay.join(conversation_group(self.conversation_id), self)
            if self.session_user_id is not None:
                await relay.join(staff_user_group(self.session_user_id), self)
            self.joined = True
        await self.accept()
        protocol.socket_opened()
        if conversation.state == conversation.State.AWAITING_APPROVAL:
            # A reconnect is also the moment to finish an approved call a restart left behind
            # (cheap check first: connecting must stay cheap for thousands of idle sockets).
            from conversations.turns.engine import schedule_turns

            schedule_turns(self.conversation_id)
        await self.send_json(
            {
                "type": "ready",
                "conversation_id": self.conversation_id,
                "state": conversation.state,
                "last_seq": conversation.last_seq,
            }
        )
        await self.release()

    async def refuse_limited(self, refusal: socket_limits.Refusal) -> None:
        """Past a per-IP or per-visitor limit: accepted only to say why (a handshake refused
        before accept reaches the browser as a bare 1006), then closed with 4429. Not counted
        as an open socket (the gauge), so the plain accept."""
        await AsyncWebsocketConsumer.accept(self)
        await self.send_json(
            {"type": "error", "code": str(ErrorCode.RATE_LIMITED), "message": refusal.message,
             "retry_after": refusal.retry_after}
        )  # fmt: skip
        await self.close(code=CLOSE_FLOODING, reason=refusal.message)

    async def disconnect(self, code: int) -> None:
        if self.client is not None:
            await sync_to_async(socket_limits.socket_closed)(self.client)
            self.client = None
        relay = hub()
        if self.joined and relay is not None:
            await relay.leave(conversation_group(self.conversation_id), self)
            if self.session_user_id is not None:
                await relay.leave(staff_user_group(self.session_user_id), self)
        protocol.socket_closed(accepted=self.scope.get("_ad_accepted", False))

    async def accept(self, subprotocol: str | None = None, headers: Any = None) -> None:
        self.scope["_ad_accepted"] = True
        await super().accept(subprotocol, headers)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.held is None:
            self.held = []
        try:
            frame = protocol.parse_frame(text_data, bytes_data)
            await protocol.dispatch(self, frame)
        except ApplicationError as exc:
            await self.send_error(exc)
        finally:
            await self.release()

    async def send_error(self, exc: ApplicationError) -> None:
        # Refused frames are logged (SECURITY-TESTS row 8), with the socket's ids bound.
        logger.warning("chat_frame_rejected", code=str(exc.code))
        frame: dict[str, Any] = {"type": "error", "code": str(exc.code), "message": exc.message}
        frame.update(exc.details)
        if exc.retry_after is not None:
            frame["retry_after"] = exc.retry_after
        await self.send_json(frame)
        if exc.code == ErrorCode.RATE_LIMITED:
            self.strikes += 1
            if self.strikes > settings.CHAT_FLOOD_STRIKES:
                logger.warning("chat_socket_flooding_closed", strikes=self.strikes)
                await self.close(code=CLOSE_FLOODING)

    async def send_json(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=encode_frame(frame))

    async def relay(self, group: str, event: dict[str, Any], encoded: Encoded) -> None:
        if self.ended:
            return
        if self.session_user_id is not None and group == staff_user_group(self.session_user_id):
            await self.session_event(event)
            return
        texts = encoded.get("chat", lambda: [encode_frame(frame) for frame in event["frames"]])
        if self.held is not None:
            self.held.extend(texts)
            return
        for text in texts:
            await self.send(text_data=text)

    async def session_event(self, event: dict[str, Any]) -> None:
        """``staff.session_ended`` (escalations.services.staff_sessions_end): close when this
        socket's session logged out or is no longer valid."""
        if event.get("type") != SESSION_EVENT_TYPE or self.session_user_id is None:
            return
        key = event.get("session_key")
        ended = bool(key) and key == self.session_key
        if not ended:
            ended = not await database_sync_to_async(user_session_valid)(
                user_id=self.session_user_id,
                session_key=self.session_key,
                session_hash=self.session_hash,
            )
        if ended:
            self.ended = True
            logger.info("chat_socket_session_ended", reason=event.get("reason", ""))
            await self.close(code=CLOSE_SESSION_ENDED)

    async def release(self) -> None:
        while self.held:
            await self.send(text_data=self.held.pop(0))
        self.held = None
