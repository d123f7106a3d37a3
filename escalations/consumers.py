"""The staff stream ``/ws/escalations/`` (docs/escalations.md): the live queue for support
agents, and the chat of the conversation they are handling. Thin: access at connect, frames
checked and handled in ``escalations.protocol``.

Channels authenticates once, at connect, so the socket re-checks its session (the user is active
staff with the role, the password and the session unchanged) before each client frame, and at
most ``RECHECK_SECONDS`` apart before relaying queue and chat frames; a ``staff.session_ended``
message on the member's own group (logout, deactivation, password or role change) makes it
check at once. A session that ended closes the socket with 4401."""

from __future__ import annotations

import time
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
from escalations.realtime import (
    SESSION_EVENT_TYPE,
    STAFF_GROUP,
    scope_session,
    staff_user_group,
)
from escalations.selectors import DECIDE_PERMISSION, staff_session_valid, user_may_view_queue

logger = structlog.get_logger(__name__)

CLOSE_FORBIDDEN = 4403
CLOSE_SESSION_ENDED = 4401
# How stale the session check may be when relaying queue and chat frames (client frames and
# session_ended messages always check afresh).
RECHECK_SECONDS = 5.0


class EscalationQueueConsumer(AsyncWebsocketConsumer):
    channel_layer_alias = NO_LAYER  # frames arrive through the process hub (config.hub)
    user: User
    watching: str | None = None
    live: bool = False
    ended: bool = False
    session_key: str | None = None
    session_hash: str = ""
    checked_at: float = 0.0
    # Staff approvals (``interrupt_*`` frames) go only to those who may decide them, as in
    # the snapshot; a lost permission ends the session (escalations/signals.py).
    can_decide: bool = False

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
        self.session_key, self.session_hash = await database_sync_to_async(scope_session)(
            self.scope
        )
        self.checked_at = time.monotonic()
        self.can_decide = await database_sync_to_async(user.has_perm)(DECIDE_PERMISSION)
        await self.accept()
        # Join the process's relay, then read the snapshot: nothing falls in between. Frames
        # relayed meanwhile wait, and follow the snapshot in order (repeats are harmless).
        relay = hub()
        if relay is not None:
            await relay.join(staff_user_group(user.pk), self)
            await relay.join(STAFF_GROUP, self)
        await self.send_json(await database_sync_to_async(protocol.queue_snapshot)(self.user))
        while self.backlog:
            await self.send(text_data=self.backlog.pop(0))
        self.live = True

    async def relay(self, group: str, event: dict[str, Any], encoded: Encoded) -> None:
        if self.ended:
            return
        if group == staff_user_group(self.user.pk):
            if event.get("type") == SESSION_EVENT_TYPE:
                await self.staff_session_ended(event)
            return
        if not await self.session_still_valid(fresh=False):
            return
        if group == STAFF_GROUP:
            if str(event["frame"].get("type", "")).startswith("interrupt_") and not self.can_decide:
                return
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
        await self.leave_all()

    async def leave_all(self) -> None:
        relay = hub()
        if relay is not None and hasattr(self, "user"):
            await relay.leave(STAFF_GROUP, self)
            await relay.leave(staff_user_group(self.user.pk), self)
        await self.watch(None)

    async def staff_session_ended(self, event: dict[str, Any]) -> None:
        """The member logged out, or their account or roles changed: the socket of the session
        that logged out closes; the others stay only if their session is still valid."""
        if event.get("session_key") and event.get("session_key") == self.session_key:
            await self.end_session(str(event.get("reason", "")))
        else:
            await self.session_still_valid(fresh=True)

    async def session_still_valid(self, *, fresh: bool) -> bool:
        if self.ended:
            return False
        if not fresh and time.monotonic() - self.checked_at < RECHECK_SECONDS:
            return True
        valid = await database_sync_to_async(staff_session_valid)(
            user_id=self.user.pk, session_key=self.session_key, session_hash=self.session_hash
        )
        if not valid:
            await self.end_session("session_invalid")
            return False
        self.checked_at = time.monotonic()
        return True

    async def end_session(self, reason: str) -> None:
        if self.ended:
            return
        self.ended = True
        self.backlog.clear()
        logger.info("staff_socket_session_ended", reason=reason)
        # Close first: leaving the last group stops the hub's task, which may be this one.
        await self.close(code=CLOSE_SESSION_ENDED)
        await self.leave_all()

    async def watch(self, conversation_id: str | None) -> None:
        """Follow at most one conversation: the one on the agent's handoff page."""
        relay = hub()
        if relay is not None and self.watching is not None:
            await relay.leave(conversation_group(self.watching), self)
        self.watching = conversation_id
        if relay is not None and conversation_id is not None:
            await relay.join(conversation_group(conversation_id), self)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not await self.session_still_valid(fresh=True):
            return  # refused: the socket is closing with 4401
        try:
            await protocol.dispatch(self, protocol.parse_frame(text_data))
        except ApplicationError as exc:
            # The chat protocol's error shape: code, message, then any details.
            await self.send_json(
                {"type": "error", "code": str(exc.code), "message": exc.message, **exc.details}
            )

    async def send_json(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=encode_frame(frame))
