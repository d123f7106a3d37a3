"""Helpers for escalation tests: staff sessions and the staff socket on the real ASGI app."""

from __future__ import annotations

import asyncio
from importlib import import_module
from typing import Any
from uuid import UUID

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User

from config.asgi import application
from conversations.services import handoff_request
from escalations.models import Escalation

ORIGIN = (b"origin", b"http://testserver")


def session_key(user: User) -> str:
    """A logged-in session for ``user`` in the session store, as the admin login makes."""
    engine = import_module(settings.SESSION_ENGINE)
    session = engine.SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return str(session.session_key)


def session_cookie(user: User) -> str:
    return f"{settings.SESSION_COOKIE_NAME}={session_key(user)}"


async def staff_connect(
    user: User | None,
) -> tuple[WebsocketCommunicator, dict[str, Any] | int]:
    """The staff stream as ``user`` (``None``: anonymous). Returns the socket and the first
    frame (the ``queue`` snapshot) or the close code when refused."""
    headers = [ORIGIN]
    if user is not None:
        cookie = await database_sync_to_async(session_cookie)(user)
        headers.append((b"cookie", cookie.encode()))
    communicator = WebsocketCommunicator(application, "/ws/escalations/", headers=headers)
    connected, code = await communicator.connect()
    if not connected:
        return communicator, int(code or 0)
    return communicator, await communicator.receive_json_from(timeout=5)


async def idle(within: float = 30) -> None:
    """Wait for the runtime's background turns started on this event loop. (Its own
    ``wait_idle`` also waits for tasks a previous test left on a loop that no longer runs.)"""
    from conversations.turns import engine

    loop = asyncio.get_running_loop()
    async with asyncio.timeout(within):
        while pending := [t for t in engine._tasks if t.get_loop() is loop and not t.done()]:
            await asyncio.gather(*pending, return_exceptions=True)


async def next_of(communicator: WebsocketCommunicator, kind: str, within: float = 5) -> Any:
    """The next frame of type ``kind``, skipping others."""
    while True:
        frame = await communicator.receive_json_from(timeout=within)
        if frame["type"] == kind:
            return frame


def escalate(
    conversation_id: UUID | str, trigger: str = "customer_button", reason: str = ""
) -> Escalation:
    handoff_request(
        conversation_id=str(conversation_id),
        trigger=trigger,
        reason=reason or "The customer asked for a human.",
    )
    return Escalation.objects.get(
        conversation_id=conversation_id, status__in=["waiting", "claimed"]
    )
