"""The chat socket's protocol through the real ASGI application: access, bad input, limits,
de-duplication and resume (docs/websocket-protocol.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from config.asgi import application
from conversations.models import Conversation, Message, Turn
from conversations.turns.engine import wait_idle
from tests.conversations.chat import connect, frames_until, turn_ended

pytestmark = pytest.mark.django_db(transaction=True)


async def test_another_visitors_conversation_is_refused(conversation: Conversation) -> None:
    ws, code = await connect(conversation.pk, "visitor-b")
    assert code == 4403
    await ws.disconnect()


async def test_unknown_conversation_and_no_cookie_are_refused(conversation: Conversation) -> None:
    ws, code = await connect("6f1c9c55-2f8b-4c3e-a8a5-000000000000", "visitor-a")
    assert code == 4403
    await ws.disconnect()
    bare = WebsocketCommunicator(
        application, f"/ws/chat/{conversation.pk}/", headers=[(b"origin", b"http://testserver")]
    )
    connected, code = await bare.connect()
    assert not connected and code == 4403
    await bare.disconnect()


async def test_forged_cookie_is_refused(conversation: Conversation) -> None:
    forged = WebsocketCommunicator(
        application,
        f"/ws/chat/{conversation.pk}/",
        headers=[(b"origin", b"http://testserver"), (b"cookie", b"ad_visitor=visitor-a:forged")],
    )
    connected, _ = await forged.connect()
    assert not connected
    await forged.disconnect()


async def test_cross_origin_is_refused(conversation: Conversation) -> None:
    ws, code = await connect(conversation.pk, "visitor-a", origin=b"http://evil.example")
    assert isinstance(code, int)
    await ws.disconnect()


BAD_FRAMES = [
    ("{not json", "malformed_json"),
    ("[1, 2]", "invalid_frame"),
    ('"text"', "invalid_frame"),
    ("null", "invalid_frame"),
    ('{"content": "hi"}', "unknown_type"),
    ('{"type": "shout", "content": "hi"}', "unknown_type"),
    ('{"type": "message", "content": "hi"}', "invalid_frame"),
    ('{"type": "message", "client_id": "", "content": "hi"}', "invalid_frame"),
    ('{"type": "message", "client_id": "x", "content": 42}', "invalid_frame"),
    ('{"type": "message", "client_id": "x", "content": "   \\n\\t "}', "empty_message"),
    ('{"type": "message", "client_id": "x", "content": "' + "a" * 10_001 + '"}',
     "message_too_long"),
    ('{"type": "message", "client_id": "x", "content": "' + "a" * 33_000 + '"}',
     "frame_too_large"),
    ('{"type": "resume", "after": -1}', "invalid_frame"),
    ('{"type": "resume", "after": "5"}', "invalid_frame"),
    ('{"type": "approval", "interrupt_id": "x"}', "invalid_frame"),
    ('{"type": "approval", "interrupt_id": "nope", "decision": "approve"}', "not_found"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "code"), BAD_FRAMES)
async def test_bad_frames_get_an_error_and_change_nothing(
    conversation: Conversation, raw: str, code: str
) -> None:
    ws, _ = await connect(conversation.pk, "visitor-a")
    await ws.send_to(text_data=raw)
    reply = await ws.receive_json_from(timeout=5)
    assert reply["type"] == "error" and reply["code"] == code, reply
    # The socket stays usable.
    await ws.send_json_to({"type": "ping"})
    assert await ws.receive_json_from(timeout=5) == {"type": "pong"}
    await ws.disconnect()
    assert not await Message.objects.filter(conversation=conversation).aexists()
    assert not await Turn.objects.aexists()


async def test_binary_frames_are_refused(conversation: Conversation) -> None:
    ws, _ = await connect(conversation.pk, "visitor-a")
    await ws.send_to(bytes_data=b"\x00\x01")
    reply = await ws.receive_json_from(timeout=5)
    await ws.disconnect()
    assert reply["code"] == "invalid_frame"


async def test_client_id_deduplicates_resends(conversation: Conversation) -> None:
    ws, _ = await connect(conversation.pk, "visitor-a")
    await ws.send_json_to({"type": "message", "client_id": "same", "content": "hello"})
    await frames_until(ws, turn_ended)
    await ws.send_json_to({"type": "message", "client_id": "same", "content": "hello"})
    ack = await ws.receive_json_from(timeout=5)
    await ws.disconnect()
    await wait_idle()
    assert ack["type"] == "message" and ack["seq"] == 1 and ack["client_id"] == "same"
    assert await Message.objects.filter(role="user").acount() == 1
    assert await Turn.objects.acount() == 1


async def test_resume_after_reconnect_replays_missed_frames_once(
    conversation: Conversation,
) -> None:
    first, _ = await connect(conversation.pk, "visitor-a")
    await first.send_json_to({"type": "message", "client_id": "m1", "content": "hello"})
    frames = await frames_until(first, turn_ended)
    seen = max(f["seq"] for f in frames if "seq" in f)
    await first.disconnect()
    # While offline, a second tab carries on.
    other, _ = await connect(conversation.pk, "visitor-a")
    await other.send_json_to({"type": "message", "client_id": "m2", "content": "thanks"})
    missed = await frames_until(other, turn_ended)
    await other.disconnect()
    await wait_idle()

    again, ready = await connect(conversation.pk, "visitor-a")
    assert isinstance(ready, dict) and ready["last_seq"] > seen
    await again.send_json_to({"type": "resume", "after": seen})
    replay = await frames_until(again, lambda f: f["type"] == "resumed")
    await again.disconnect()
    replayed = [f for f in replay if "seq" in f]
    assert [f["seq"] for f in replayed] == list(range(seen + 1, ready["last_seq"] + 1))
    durable_missed = [f for f in missed if "seq" in f]
    assert [f["seq"] for f in replayed] == [f["seq"] for f in durable_missed]
    assert replayed == durable_missed
    assert replay[-1] == {"type": "resumed", "last_seq": ready["last_seq"]}


async def test_rate_limit_then_flooding_closes(conversation: Conversation, settings: Any) -> None:
    settings.CHAT_RATE_LIMIT_MESSAGES = 2
    settings.CHAT_FLOOD_STRIKES = 3
    ws, _ = await connect(conversation.pk, "visitor-a")
    codes = []
    for i in range(6):
        await ws.send_json_to({"type": "message", "client_id": f"f{i}", "content": "spam"})
    output = []
    while True:
        event = await ws.receive_output(timeout=5)
        if event["type"] == "websocket.close":
            break
        frame = json.loads(event["text"])
        output.append(frame)
        if frame["type"] == "error":
            codes.append(frame)
    await wait_idle()
    assert event["code"] == 4429
    assert [c["code"] for c in codes] == ["rate_limited"] * 4
    assert all(c["retry_after"] >= 1 for c in codes)
    assert await Message.objects.filter(role="user").acount() == 2


async def test_rate_limit_is_shared_across_channel_layer_clients(
    redis_url: str, conversation: Conversation, settings: Any
) -> None:
    """Two sockets on two Redis channel-layer clients (as two processes would be) share the
    conversation's limit, since it lives in Redis."""
    from channels.layers import channel_layers

    settings.CHAT_RATE_LIMIT_MESSAGES = 3
    a, _ = await connect(conversation.pk, "visitor-a")
    channel_layers.backends.clear()  # the next socket builds its own Redis client
    b, _ = await connect(conversation.pk, "visitor-a")
    accepted = refused = 0
    for i in range(4):
        for ws, name in ((a, "a"), (b, "b")):
            await ws.send_json_to({"type": "message", "client_id": f"{name}{i}", "content": "x"})
    for ws in (a, b):
        # receive_nothing() peeks without cancelling the socket on an empty queue.
        while not await ws.receive_nothing(timeout=1):
            frame = await ws.receive_json_from()
            if frame["type"] == "error" and frame["code"] == "rate_limited":
                refused += 1
    await a.disconnect()
    await b.disconnect()
    await wait_idle()
    accepted = await Message.objects.filter(role="user").acount()
    assert accepted == 3 and refused == 5


async def test_closed_conversation_refuses_messages(conversation: Conversation) -> None:
    await Conversation.objects.filter(pk=conversation.pk).aupdate(state="closed")
    ws, _ = await connect(conversation.pk, "visitor-a")
    await ws.send_json_to({"type": "message", "client_id": "c", "content": "hello?"})
    reply = await ws.receive_json_from(timeout=5)
    await ws.disconnect()
    assert reply["code"] == "invalid_transition"
