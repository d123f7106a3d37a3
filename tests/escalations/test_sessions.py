"""Staff sessions end everywhere (SECURITY-TESTS row 5): an open /ws/escalations/ socket closes
with 4401 within 5 s of its member's logout, deactivation, password change or lost role,
through the real ASGI application (in-memory layer by default, Redis under REDIS_URL); other
members' sockets stay open; a frame after the session ended is refused."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import HttpCommunicator, WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import Group, User

from access.roles import SUPPORT_AGENT
from escalations import consumers
from tests.escalations.support import ORIGIN, escalate, next_of, session_key

pytestmark = pytest.mark.django_db(transaction=True)

db = database_sync_to_async
WITHIN = 5.0


async def open_socket(user: User) -> tuple[WebsocketCommunicator, str]:
    """The staff stream on a fresh session of ``user``; returns it and the session key."""
    from config.asgi import application

    key = await db(session_key)(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={key}".encode()
    ws = WebsocketCommunicator(
        application, "/ws/escalations/", headers=[ORIGIN, (b"cookie", cookie)]
    )
    connected, code = await ws.connect()
    assert connected, code
    assert (await ws.receive_json_from(timeout=5))["type"] == "queue"
    return ws, key


async def close_code(ws: WebsocketCommunicator, within: float = WITHIN) -> int:
    """The code the server closes with, skipping the frames before it; fails after ``within``."""
    async with asyncio.timeout(within):
        while True:
            message = await ws.receive_output(timeout=within)
            if message["type"] == "websocket.close":
                return int(message.get("code", 1000))


async def still_open(ws: WebsocketCommunicator) -> None:
    await ws.send_json_to({"type": "ping"})
    assert await next_of(ws, "pong") == {"type": "pong"}


async def logout_over_http(key: str) -> int:
    """POST /admin/logout/ with that session, through the real ASGI app (CSRF included)."""
    from config.asgi import application

    token = secrets.token_hex(16)
    cookies = f"{settings.SESSION_COOKIE_NAME}={key}; {settings.CSRF_COOKIE_NAME}={token}"
    http = HttpCommunicator(
        application,
        "POST",
        "/admin/logout/",
        body=f"csrfmiddlewaretoken={token}".encode(),
        headers=[
            (b"host", b"testserver"),
            ORIGIN,
            (b"cookie", cookies.encode()),
            (b"content-type", b"application/x-www-form-urlencoded"),
        ],
    )
    response: dict[str, Any] = await http.get_response(timeout=10)
    return int(response["status"])


def _save(user_id: int, **changes: Any) -> None:
    user = User.objects.get(pk=user_id)
    for field, value in changes.items():
        setattr(user, field, value)
    user.save()


def _set_password(user_id: int) -> None:
    user = User.objects.get(pk=user_id)
    user.set_password("a whole new passphrase")
    user.save()


def _remove_role(user_id: int) -> None:
    User.objects.get(pk=user_id).groups.remove(Group.objects.get(name=SUPPORT_AGENT))


def _remove_from_role(user_id: int) -> None:
    Group.objects.get(name=SUPPORT_AGENT).user_set.remove(user_id)


TRIGGERS = {
    "deactivated": lambda pk: _save(pk, is_active=False),
    "password_changed": _set_password,
    "role_removed": _remove_role,
    "removed_from_role": _remove_from_role,
    "staff_flag_removed": lambda pk: _save(pk, is_staff=False),
}


async def test_logout_through_the_admin_closes_that_sessions_socket(
    support_agent: User, second_agent: User
) -> None:
    ws, key = await open_socket(support_agent)
    other_session, _ = await open_socket(support_agent)  # the same agent on another browser
    other_agent, _ = await open_socket(second_agent)

    assert await logout_over_http(key) == 200

    assert await close_code(ws) == consumers.CLOSE_SESSION_ENDED
    await still_open(other_session)
    await still_open(other_agent)
    await other_session.disconnect()
    await other_agent.disconnect()


@pytest.mark.parametrize("trigger", sorted(TRIGGERS))
async def test_an_account_change_closes_the_members_sockets(
    trigger: str, support_agent: User, second_agent: User
) -> None:
    first, _ = await open_socket(support_agent)
    second, _ = await open_socket(support_agent)
    other_agent, _ = await open_socket(second_agent)

    await db(TRIGGERS[trigger])(support_agent.pk)

    assert await close_code(first) == consumers.CLOSE_SESSION_ENDED
    assert await close_code(second) == consumers.CLOSE_SESSION_ENDED
    await still_open(other_agent)
    await other_agent.disconnect()


async def test_saving_an_unrelated_field_keeps_the_socket(support_agent: User) -> None:
    ws, _ = await open_socket(support_agent)

    await db(_save)(support_agent.pk, first_name="Renamed")

    await still_open(ws)
    await ws.disconnect()


async def test_a_frame_after_deactivation_is_refused_even_without_signals(
    support_agent: User,
) -> None:
    """A bulk update sends no signal; the per-frame re-check still refuses the frame."""
    ws, _ = await open_socket(support_agent)
    await User.objects.filter(pk=support_agent.pk).aupdate(is_active=False)

    await ws.send_json_to({"type": "snapshot"})

    assert await close_code(ws) == consumers.CLOSE_SESSION_ENDED


async def test_a_frame_after_the_session_was_deleted_is_refused(support_agent: User) -> None:
    from django.contrib.sessions.models import Session

    ws, key = await open_socket(support_agent)
    await Session.objects.filter(session_key=key).adelete()

    await ws.send_json_to({"type": "ping"})

    assert await close_code(ws) == consumers.CLOSE_SESSION_ENDED


async def test_queue_frames_are_not_relayed_once_the_session_is_invalid(
    support_agent: User, conversation: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 0.0)
    ws, _ = await open_socket(support_agent)
    await User.objects.filter(pk=support_agent.pk).aupdate(is_active=False)

    await db(escalate)(conversation.pk)  # broadcasts escalation_created to the staff group

    message = await ws.receive_output(timeout=WITHIN)
    assert message["type"] == "websocket.close", message  # not the escalation_created frame
    assert message["code"] == consumers.CLOSE_SESSION_ENDED


async def open_chat(user: User) -> tuple[WebsocketCommunicator, WebsocketCommunicator, str]:
    """Two chat sockets on the user's own conversation: one on a session that will end, one
    on another session of the same user, which must survive a logout of the first."""
    from config.asgi import application
    from conversations.services import conversation_start

    conversation = await db(conversation_start)(user=user)
    sockets, keys = [], []
    for _ in range(2):
        key = await db(session_key)(user)
        cookie = f"{settings.SESSION_COOKIE_NAME}={key}".encode()
        ws = WebsocketCommunicator(
            application, f"/ws/chat/{conversation.pk}/", headers=[ORIGIN, (b"cookie", cookie)]
        )
        connected, code = await ws.connect()
        assert connected, code
        assert (await ws.receive_json_from(timeout=5))["type"] == "ready"
        sockets.append(ws)
        keys.append(key)
    return sockets[0], sockets[1], keys[0]


async def test_logout_closes_the_staff_members_own_chat_socket(support_agent: User) -> None:
    from conversations.consumers import CLOSE_SESSION_ENDED

    chat, other_session, key = await open_chat(support_agent)

    assert await logout_over_http(key) == 200

    assert await close_code(chat) == CLOSE_SESSION_ENDED
    await other_session.send_json_to({"type": "ping"})
    assert await next_of(other_session, "pong") == {"type": "pong"}
    await other_session.disconnect()


async def test_deactivation_closes_every_chat_socket_of_the_member(support_agent: User) -> None:
    from conversations.consumers import CLOSE_SESSION_ENDED

    chat, other_session, _ = await open_chat(support_agent)

    await db(TRIGGERS["deactivated"])(support_agent.pk)

    assert await close_code(chat) == CLOSE_SESSION_ENDED
    assert await close_code(other_session) == CLOSE_SESSION_ENDED
