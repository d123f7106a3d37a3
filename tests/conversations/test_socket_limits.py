"""Per-IP and per-visitor limits on the chat socket (issue 18 item 9; SECURITY-TESTS row 7):
handshakes, open sockets and messages, counted in the shared cache, refused with an error
frame carrying ``retry_after`` and close code 4429 with a reason."""

from __future__ import annotations

from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from config.asgi import application
from conversations import socket_limits
from conversations.models import Conversation, Message
from conversations.services import conversation_start
from conversations.turns.engine import wait_idle
from tests.conversations.chat import visitor_cookie

pytestmark = pytest.mark.django_db(transaction=True)


async def _open(
    visitor: str, ip: str = "203.0.113.9", conversation: Conversation | None = None
) -> tuple[WebsocketCommunicator, dict[str, Any]]:
    from asgiref.sync import sync_to_async

    if conversation is None:
        conversation = await sync_to_async(conversation_start)(visitor_id=visitor)
    communicator = WebsocketCommunicator(
        application,
        f"/ws/chat/{conversation.pk}/",
        headers=[(b"origin", b"http://testserver"), (b"cookie", visitor_cookie(visitor))],
    )
    communicator.scope["client"] = (ip, 50000)
    connected, _ = await communicator.connect()
    assert connected
    return communicator, await communicator.receive_json_from(timeout=5)


async def _assert_limited(
    communicator: WebsocketCommunicator, first: dict[str, Any], words: str
) -> None:
    assert first["type"] == "error" and first["code"] == "rate_limited", first
    assert first["retry_after"] >= 1 and words in first["message"]
    closed = await communicator.receive_output(timeout=5)
    assert closed["type"] == "websocket.close" and closed["code"] == 4429
    assert words in closed["reason"]


async def test_open_sockets_per_ip(settings: Any) -> None:
    settings.CHAT_MAX_SOCKETS_PER_IP = 3
    sockets = [(await _open(f"visitor-{n}"))[0] for n in range(3)]
    refused, first = await _open("visitor-x")
    await _assert_limited(refused, first, "open chats from your network")
    # Another network is not affected; a closed socket frees a place.
    other, ready = await _open("visitor-y", ip="198.51.100.4")
    assert ready["type"] == "ready"
    await sockets.pop().disconnect()
    again, ready = await _open("visitor-z")
    assert ready["type"] == "ready"
    for ws in [*sockets, other, again]:
        await ws.disconnect()
    assert socket_limits.open_sockets("ip:203.0.113.9") == 0


async def test_open_sockets_per_visitor(settings: Any) -> None:
    settings.CHAT_MAX_SOCKETS_PER_VISITOR = 2
    sockets = [(await _open("visitor-a", ip=f"198.51.100.{n}"))[0] for n in range(2)]
    refused, first = await _open("visitor-a", ip="198.51.100.77")
    await _assert_limited(refused, first, "open chats from this browser")
    for ws in sockets:
        await ws.disconnect()


async def test_a_refused_handshake_is_not_counted_as_an_open_socket(settings: Any) -> None:
    from conversations.protocol import OPEN_SOCKETS

    settings.CHAT_MAX_SOCKETS_PER_VISITOR = 1
    kept, _ = await _open("visitor-a")
    before = OPEN_SOCKETS._value.get()
    refused, first = await _open("visitor-a")
    await _assert_limited(refused, first, "open chats")
    await refused.disconnect()
    assert OPEN_SOCKETS._value.get() == before
    assert socket_limits.open_sockets("visitor:visitor-a") == 1
    await kept.disconnect()
    assert socket_limits.open_sockets("visitor:visitor-a") == 0


async def test_handshakes_per_minute(settings: Any) -> None:
    settings.CHAT_HANDSHAKES_PER_MINUTE = 3
    for n in range(3):
        ws, ready = await _open(f"visitor-{n}")
        assert ready["type"] == "ready"
        await ws.disconnect()
    refused, first = await _open("visitor-9")
    await _assert_limited(refused, first, "connection attempts")


async def test_a_count_in_the_shared_cache_is_obeyed(settings: Any) -> None:
    """Another process's sockets are in the same cache keys (Redis in production)."""
    from django.core.cache import cache

    settings.CHAT_MAX_SOCKETS_PER_IP = 5
    cache.set("ws:open:ip:203.0.113.9", 5, timeout=60)
    refused, first = await _open("visitor-a")
    await _assert_limited(refused, first, "open chats")


async def test_a_new_conversation_is_no_new_message_budget(settings: Any) -> None:
    settings.CHAT_MESSAGES_PER_MINUTE_PER_VISITOR = 2
    first, _ = await _open("visitor-a")
    for n in range(2):
        await first.send_json_to({"type": "message", "client_id": f"a{n}", "content": "hi"})
    await first.disconnect()
    await wait_idle()
    second, _ = await _open("visitor-a")
    await second.send_json_to({"type": "message", "client_id": "b1", "content": "hi again"})
    while (frame := await second.receive_json_from(timeout=5))["type"] != "error":
        pass
    assert frame["code"] == "rate_limited" and frame["retry_after"] >= 1
    assert "from this browser" in frame["message"]
    await second.disconnect()
    await wait_idle()
    assert not await Message.objects.filter(content="hi again").aexists()


async def test_messages_per_ip(settings: Any) -> None:
    settings.CHAT_MESSAGES_PER_MINUTE_PER_IP = 1
    first, _ = await _open("visitor-a")
    await first.send_json_to({"type": "message", "client_id": "a1", "content": "hi"})
    second, _ = await _open("visitor-b")
    await second.send_json_to({"type": "message", "client_id": "b1", "content": "me too"})
    while (frame := await second.receive_json_from(timeout=5))["type"] != "error":
        pass
    assert frame["code"] == "rate_limited" and "from your network" in frame["message"]
    for ws in (first, second):
        await ws.disconnect()
    await wait_idle()


def test_message_limits_cost_one_redis_round_trip(redis_url: str, monkeypatch: Any) -> None:
    """With Redis the IP's and the visitor's counts are one script: a chat turn keeps its
    Redis budget (tests/conversations/test_turn_budget.py) plus this one trip."""
    from django.core.cache import cache

    client = socket_limits.Client(ip="203.0.113.9", visitor="visitor-a")
    assert socket_limits.message_check(client) is None  # the script is loaded
    redis = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
    commands: list[str] = []
    original = redis.execute_command

    def counting(*args: Any, **kwargs: Any) -> Any:
        commands.append(str(args[0]))
        return original(*args, **kwargs)

    monkeypatch.setattr(redis, "execute_command", counting)
    assert socket_limits.message_check(client) is None
    assert commands == ["EVALSHA"]
