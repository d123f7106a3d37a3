"""The staff stream /ws/escalations/ and the customer's chat socket together, through the real
ASGI application (origin check, sessions, routing): access, the snapshot, live frames, the
human chat, AI silence, hand-back and reopen."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import User

from conversations.models import Conversation, Message, Turn
from escalations.models import Escalation
from escalations.services import escalation_claim, escalation_hand_back, escalation_resolve
from tests.conversations.chat import connect, frames_until, turn_ended
from tests.escalations.support import escalate, idle, next_of, staff_connect
from tests.factories import StaffFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

db = database_sync_to_async


@pytest.mark.parametrize("who", ["anonymous", "customer", "staff_without_role"])
async def test_the_stream_refuses_everyone_but_staff_with_the_permission(
    who: str, roles: None
) -> None:
    make = {
        "anonymous": lambda: None,
        "customer": lambda: UserFactory(username="customer"),
        "staff_without_role": lambda: StaffFactory(username="bare-staff"),
    }[who]
    user = await db(make)()
    ws, code = await staff_connect(user)
    assert code == 4403
    await ws.disconnect()


async def test_a_support_agent_gets_the_queue_snapshot(
    conversation: Conversation, support_agent: User
) -> None:
    escalation = await db(escalate)(conversation.pk)

    ws, snapshot = await staff_connect(support_agent)

    assert isinstance(snapshot, dict) and snapshot["type"] == "queue"
    assert [e["id"] for e in snapshot["escalations"]] == [escalation.pk]
    row = snapshot["escalations"][0]
    assert (row["status"], row["trigger"], row["conversation_id"]) == (
        "waiting",
        "customer_button",
        str(conversation.pk),
    )
    assert row["url"] == f"/admin/escalations/handoff/{escalation.pk}/"
    assert snapshot["me"]["name"] == "agent" and snapshot["interrupts"] == []
    await ws.send_json_to({"type": "ping"})
    assert await ws.receive_json_from(timeout=5) == {"type": "pong"}
    await ws.disconnect()


async def test_the_escalate_button_reaches_staff_live(
    conversation: Conversation, support_agent: User
) -> None:
    staff, _ = await staff_connect(support_agent)
    customer, _ = await connect(conversation.pk, "visitor-a")
    await idle()  # the runtime's check at connect

    await customer.send_json_to({"type": "escalate", "reason": "my parcel is lost"})

    escalated = await next_of(customer, "escalated")
    created = await next_of(staff, "escalation_created")
    assert escalated["trigger"] == "customer_button"
    assert created["escalation"]["reason"] == "my parcel is lost"
    assert created["escalation"]["status"] == "waiting"
    assert await Escalation.objects.filter(trigger="customer_button").acount() == 1
    await customer.disconnect()
    await staff.disconnect()
    await idle()


async def test_asking_for_a_human_in_words_escalates(
    conversation: Conversation, support_agent: User
) -> None:
    staff, _ = await staff_connect(support_agent)
    customer, _ = await connect(conversation.pk, "visitor-a")
    await idle()  # the runtime's check at connect

    await customer.send_json_to(
        {"type": "message", "client_id": "c1", "content": "I want to talk to a human"}
    )

    created = await next_of(staff, "escalation_created", within=10)
    assert created["escalation"]["trigger"] == "customer_words"
    await frames_until(customer, turn_ended)
    await idle()
    escalation = await Escalation.objects.aget()
    assert escalation.trigger == "customer_words" and escalation.status == "waiting"
    assert escalation.packet["summary"]["first_customer_message"]["content"] == (
        "I want to talk to a human"
    )
    await customer.disconnect()
    await staff.disconnect()


async def test_the_human_chat_end_to_end(
    conversation: Conversation,
    named_agent: User,
    second_agent: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Claim, the customer sees who joined, staff and customer write to each other live, the
    AI stays silent, then the agent hands back and the AI answers again."""
    spy = TurnSpy(monkeypatch)
    escalation = await db(escalate)(conversation.pk)
    staff, _ = await staff_connect(named_agent)
    other, _ = await staff_connect(second_agent)
    customer, _ready = await connect(conversation.pk, "visitor-a")
    await idle()  # the runtime's check at connect

    await db(escalation_claim)(escalation=escalation, user=named_agent)

    joined = await next_of(customer, "staff_joined")
    assert (joined["name"], joined["content"]) == (
        "Ana",
        "Ana from support joined the conversation.",
    )
    claimed = await next_of(other, "escalation_claimed")
    assert claimed["escalation"]["claimed_by"]["name"] == "Ana Lima"

    # The agent's page follows the conversation and writes over the socket.
    await staff.send_json_to({"type": "watch", "escalation_id": escalation.pk, "after": 0})
    replayed = []
    while (frame := await staff.receive_json_from(timeout=5))["type"] != "watching":
        if frame["type"] == "chat":
            replayed.append(frame["frame"]["type"])
    assert replayed[-2:] == ["escalated", "staff_joined"]
    await staff.send_json_to(
        {
            "type": "message",
            "escalation_id": escalation.pk,
            "content": "<b>Hi</b>, Ana here",
            "ref": "r1",
        }
    )
    to_customer = await next_of(customer, "message")
    assert (to_customer["role"], to_customer["content"], to_customer["author"]) == (
        "staff",
        "<b>Hi</b>, Ana here",
        "Ana",
    )
    sent = await next_of(staff, "sent")
    assert sent["ref"] == "r1" and sent["seq"] == to_customer["seq"]

    # The other agent may not write in a conversation Ana holds.
    await other.send_json_to({"type": "message", "escalation_id": escalation.pk, "content": "me?"})
    error = await next_of(other, "error")
    assert error["code"] == "permission_denied"

    # The customer answers: staff see it live; no AI turn runs while a human holds it.
    before = spy.started
    await customer.send_json_to({"type": "message", "client_id": "c1", "content": "thanks!"})
    seen = await next_of(staff, "chat")
    while seen["frame"].get("role") != "user":
        seen = await next_of(staff, "chat")
    assert seen["frame"]["content"] == "thanks!"
    turn = await spy.next_turn(conversation, before)
    assert turn.status == "skipped"
    assert not await Message.objects.filter(conversation=conversation, role="assistant").aexists()

    # Hand back: the customer is told, and their next message gets an AI answer.
    await db(escalation_hand_back)(escalation=escalation, user=named_agent)
    frames = await frames_until(
        customer, lambda f: f["type"] == "message" and f["role"] == "system"
    )
    assert "back with the assistant" in frames[-1]["content"]
    handed_back = await next_of(other, "escalation_handed_back")
    assert handed_back["escalation"]["status"] == "handed_back"
    await customer.send_json_to({"type": "message", "client_id": "c2", "content": "hello again"})
    frames = await frames_until(customer, turn_ended)
    assert frames[-1]["status"] == "completed"
    assert any(f.get("role") == "assistant" for f in frames if "seq" in f)
    await idle()
    for ws in (customer, staff, other):
        await ws.disconnect()


async def test_resolved_then_customer_writes_again_reopens_with_the_ai(
    conversation: Conversation, support_agent: User
) -> None:
    escalation = await db(escalate)(conversation.pk)
    await db(escalation_claim)(escalation=escalation, user=support_agent)
    await db(escalation_resolve)(escalation=escalation, user=support_agent)
    customer, ready = await connect(conversation.pk, "visitor-a")
    await idle()  # the runtime's check at connect
    assert isinstance(ready, dict) and ready["state"] == "resolved"

    await customer.send_json_to({"type": "message", "client_id": "c1", "content": "one more thing"})
    frames = await frames_until(customer, turn_ended)
    await idle()
    await customer.disconnect()

    refreshed = await Conversation.objects.aget(pk=conversation.pk)
    assert (refreshed.state, refreshed.reopen_count) == ("ai_active", 1)
    assert frames[-1]["status"] == "completed"


class TurnSpy:
    """Counts the runtime's background starts, so a test can wait for a turn without reading
    the database while it runs (SQLite's shared in-memory test database refuses a write that
    races a read)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from conversations.turns import engine

        self.started = 0
        self.changed = asyncio.Event()
        original = engine.schedule_turns

        def spy(conversation_id: str, *args: Any, **kwargs: Any) -> None:
            original(conversation_id, *args, **kwargs)
            self.started += 1
            self.changed.set()

        monkeypatch.setattr(engine, "schedule_turns", spy)

    async def next_turn(self, conversation: Conversation, seen: int) -> Turn:
        async with asyncio.timeout(5):
            while self.started <= seen:
                self.changed.clear()
                await self.changed.wait()
        await idle()
        return await Turn.objects.order_by("-pk").aget(conversation=conversation)


BAD_FRAMES = [
    ("{nope", "malformed_json"),
    ("[]", "invalid_frame"),
    ('{"type": "shout"}', "unknown_type"),
    ('{"type": "watch"}', "invalid_frame"),
    ('{"type": "watch", "escalation_id": 999999}', "not_found"),
    ('{"type": "watch", "escalation_id": 1, "after": -1}', "invalid_frame"),
    ('{"type": "message", "escalation_id": 999999, "content": "hi"}', "not_found"),
    ('{"type": "message", "escalation_id": 1, "content": 5}', "invalid_frame"),
]


@pytest.mark.parametrize(("raw", "code"), BAD_FRAMES)
async def test_bad_staff_frames_get_an_error_and_the_socket_stays(
    support_agent: User, raw: str, code: str
) -> None:
    ws, _ = await staff_connect(support_agent)
    await ws.send_to(text_data=raw)
    error = await ws.receive_json_from(timeout=5)
    assert error["type"] == "error" and error["code"] == code
    await ws.send_json_to({"type": "ping"})
    assert (await ws.receive_json_from(timeout=5))["type"] == "pong"
    await ws.disconnect()


async def test_a_viewer_sees_the_queue_but_cannot_write(
    conversation: Conversation, viewer: User, support_agent: User
) -> None:
    escalation = await db(escalate)(conversation.pk)
    await db(escalation_claim)(escalation=escalation, user=support_agent)
    ws, snapshot = await staff_connect(viewer)
    assert isinstance(snapshot, dict) and len(snapshot["escalations"]) == 1
    await ws.send_json_to({"type": "message", "escalation_id": escalation.pk, "content": "hi"})
    error: dict[str, Any] = await next_of(ws, "error")
    assert error["code"] == "permission_denied"
    assert not await Message.objects.filter(role="staff").aexists()
    await ws.disconnect()
