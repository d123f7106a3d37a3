"""The resolution lifecycle (docs/analytics.md): resolving turns, "Did that solve it?", the
inactivity close, reopening, and the events of every transition."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from analytics.models import Event
from config.errors import ApplicationError
from conversations.jobs import close_idle_conversations
from conversations.models import Conversation, Message, Turn
from conversations.resolution import (
    conversation_reopen,
    conversations_close_idle,
    resolution_answer,
)
from conversations.services import (
    conversation_start,
    conversation_transition,
    handoff_request,
    user_message_receive,
)
from conversations.turns.engine import wait_idle
from tests.conversations.chat import (
    cancel_and_approve,
    connect,
    frames_until,
    turn_ended,
    verify_customer,
)


def _events(conversation: Conversation, type: str) -> list[Event]:
    return list(Event.objects.filter(conversation_id=conversation.pk, type=type))


def _asked(conversation: Conversation, *, minutes_ago: float = 0) -> Conversation:
    """A conversation whose last turn resolved the request and asked "Did that solve it?"."""
    user_message_receive(conversation_id=conversation.pk, content="where is 1042", client_id="m1")
    Conversation.objects.filter(pk=conversation.pk).update(
        resolution_asked_at=timezone.now(), turn_count=1
    )
    _age(conversation, minutes_ago)
    return Conversation.objects.get(pk=conversation.pk)


def _age(conversation: Conversation, minutes: float) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(
        updated_at=timezone.now() - timedelta(minutes=minutes)
    )


# --- Over the socket, with the demo shop --------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_an_answer_from_a_tool_asks_did_that_solve_it_and_yes_confirms(
    demo: Any, conversation: Conversation
) -> None:
    await sync_to_async(verify_customer)(conversation.pk)
    ws, _ = await connect(conversation.pk, "visitor-a")
    await ws.send_json_to({"type": "message", "client_id": "c1", "content": "where is order 1042?"})
    frames = await frames_until(ws, turn_ended)
    kinds = [frame["type"] for frame in frames]
    assert kinds[-2:] == ["resolution_check", "turn_end"], kinds
    check = frames[-2]
    assert check["content"] == "Did that solve it?" and check["options"] == ["yes", "no"]
    assert kinds.index("message", 1) < kinds.index("resolution_check")  # after the reply

    await ws.send_json_to({"type": "resolution", "answer": "yes"})
    answered = await ws.receive_json_from(timeout=5)
    await ws.disconnect()
    await wait_idle()
    assert answered["type"] == "resolution_answered" and answered["answer"] == "yes"
    assert answered["seq"] == check["seq"] + 1
    turn = await Turn.objects.aget()
    refreshed = await Conversation.objects.aget(pk=conversation.pk)
    assert turn.resolving is True
    assert (refreshed.resolution, refreshed.resolved_turns) == ("confirmed", 1)
    assert refreshed.resolution_asked_at is None and refreshed.state == "ai_active"
    types = [e.type async for e in Event.objects.filter(conversation_id=conversation.pk)]
    assert {"turn_resolving", "resolution_confirmed", "conversation_resolved"} <= set(types)
    model_calls = [e async for e in Event.objects.filter(type="model_called")]
    assert model_calls and all(e.agent for e in model_calls)  # the agent is recorded


@pytest.mark.django_db(transaction=True)
async def test_no_offers_another_try_or_a_person_and_resolves_nothing(
    demo: Any, conversation: Conversation
) -> None:
    await sync_to_async(verify_customer)(conversation.pk)
    ws, _ = await connect(conversation.pk, "visitor-a")
    await ws.send_json_to({"type": "message", "client_id": "c1", "content": "where is order 1042?"})
    await frames_until(ws, turn_ended)
    await ws.send_json_to({"type": "resolution", "answer": "no"})
    answered = await ws.receive_json_from(timeout=5)
    # Answering twice: the question is spent.
    await ws.send_json_to({"type": "resolution", "answer": "yes"})
    again = await ws.receive_json_from(timeout=5)
    await ws.disconnect()
    await wait_idle()
    assert answered["type"] == "resolution_answered" and answered["offer_human"] is True
    assert "ask for a person" in answered["content"]
    assert again["type"] == "error" and again["code"] == "no_resolution_check"
    refreshed = await Conversation.objects.aget(pk=conversation.pk)
    assert refreshed.resolution == "" and refreshed.resolution_asked_at is None
    assert await Event.objects.filter(type="resolution_declined").acount() == 1


@pytest.mark.django_db(transaction=True)
async def test_small_talk_asks_nothing(demo: Any, conversation: Conversation) -> None:
    ws, _ = await connect(conversation.pk, "visitor-a")
    await ws.send_json_to({"type": "message", "client_id": "c1", "content": "hello there"})
    frames = await frames_until(ws, turn_ended)
    await ws.disconnect()
    await wait_idle()
    assert "resolution_check" not in [frame["type"] for frame in frames]
    assert not await Turn.objects.filter(resolving=True).aexists()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "resolution", "answer": "maybe"}, "invalid_frame"),
        ({"type": "resolution"}, "invalid_frame"),
        ({"type": "resolution", "answer": "yes"}, "no_resolution_check"),
    ],
)
@pytest.mark.django_db(transaction=True)
async def test_bad_resolution_frames_are_refused(
    conversation: Conversation, frame: dict[str, Any], code: str
) -> None:
    ws, _ = await connect(conversation.pk, "visitor-a")
    await ws.send_json_to(frame)
    reply = await ws.receive_json_from(timeout=5)
    await ws.disconnect()
    assert (reply["type"], reply["code"]) == ("error", code)
    refreshed = await Conversation.objects.aget(pk=conversation.pk)
    assert refreshed.resolution == ""


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "message", "client_id": "c1", "content": "   "}, "empty_message"),
        ({"type": "message", "content": "no client id"}, "invalid_frame"),
    ],
)
@pytest.mark.django_db(transaction=True)
async def test_refused_messages_are_recorded_as_message_rejected(
    conversation: Conversation, frame: dict[str, Any], code: str
) -> None:
    ws, _ = await connect(conversation.pk, "visitor-a")
    await ws.send_json_to(frame)
    reply = await ws.receive_json_from(timeout=5)
    await ws.disconnect()
    assert reply["code"] == code
    rejected = [e async for e in Event.objects.filter(type="message_rejected")]
    assert [(str(e.conversation_id), e.outcome) for e in rejected] == [(str(conversation.pk), code)]


@pytest.mark.django_db(transaction=True)
async def test_a_resumed_turn_records_its_latency(demo: Any, conversation: Conversation) -> None:
    await sync_to_async(verify_customer)(conversation.pk)
    ws, _ = await connect(conversation.pk, "visitor-a")
    resumed = await cancel_and_approve(ws)
    await ws.disconnect()
    await wait_idle()
    assert resumed[-1]["status"] == "completed"
    completed = await Event.objects.aget(type="turn_completed")
    assert completed.latency_ms is not None and completed.latency_ms > 0
    # The executed action resolved the request.
    assert "resolution_check" in [frame["type"] for frame in resumed]


# --- Services -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_idle_close_turns_an_unanswered_check_into_an_assumed_resolution(settings: Any) -> None:
    settings.CONVERSATION_IDLE_CLOSE_MINUTES = 30
    asked = _asked(conversation_start(visitor_id="a"), minutes_ago=31)
    silent = conversation_start(visitor_id="b")
    user_message_receive(conversation_id=silent.pk, content="hi", client_id="m1")
    _age(silent, 45)
    recent = _asked(conversation_start(visitor_id="c"), minutes_ago=29)
    waiting = conversation_start(visitor_id="d")
    handoff_request(conversation_id=waiting.pk, trigger="customer_button", reason="help")
    _age(waiting, 120)

    assert close_idle_conversations() == 2

    asked.refresh_from_db()
    silent.refresh_from_db()
    recent.refresh_from_db()
    waiting.refresh_from_db()
    assert (asked.state, asked.resolution, asked.resolved_turns) == ("closed", "assumed", 1)
    assert asked.closed_at is not None and asked.resolution_asked_at is None
    assert (silent.state, silent.resolution) == ("closed", "")
    assert recent.state == "ai_active" and recent.resolution_asked_at is not None
    assert waiting.state == "escalated"  # the humans' to close
    outcomes = {
        str(e.conversation_id): e.outcome for e in Event.objects.filter(type="conversation_closed")
    }
    assert outcomes == {str(asked.pk): "assumed", str(silent.pk): "unresolved"}
    assert [e.outcome for e in _events(asked, "conversation_resolved")] == ["assumed"]
    closed_item = Message.objects.filter(conversation=asked).last()
    assert closed_item is not None and closed_item.kind == "closed"


@pytest.mark.django_db
def test_writing_after_the_check_withdraws_it_so_closing_assumes_nothing() -> None:
    conversation = _asked(conversation_start(visitor_id="a"))
    user_message_receive(conversation_id=conversation.pk, content="and my refund?", client_id="m2")
    _age(conversation, 60)
    assert conversations_close_idle() == 1
    conversation.refresh_from_db()
    assert (conversation.state, conversation.resolution) == ("closed", "")
    with pytest.raises(ApplicationError) as refused:
        resolution_answer(conversation_id=conversation.pk, answer="yes")
    assert refused.value.code == "no_resolution_check"


@pytest.mark.django_db
def test_a_confirmed_resolution_survives_the_close() -> None:
    conversation = _asked(conversation_start(visitor_id="a"))
    resolution_answer(conversation_id=conversation.pk, answer="yes")
    _age(conversation, 60)
    assert conversations_close_idle() == 1
    conversation.refresh_from_db()
    assert (conversation.state, conversation.resolution) == ("closed", "confirmed")
    assert [e.outcome for e in _events(conversation, "conversation_closed")] == ["confirmed"]


@pytest.mark.django_db
def test_returning_within_a_week_reopens_and_takes_the_resolution_back() -> None:
    conversation = _asked(conversation_start(visitor_id="a"), minutes_ago=40)
    conversations_close_idle()
    user_message_receive(conversation_id=conversation.pk, content="it came broken", client_id="m2")
    conversation.refresh_from_db()
    assert (conversation.state, conversation.resolution, conversation.reopen_count) == (
        "ai_active",
        "",
        1,
    )
    assert conversation.reopened_at is not None and conversation.resolved_at is None
    reopened = _events(conversation, "conversation_reopened")
    assert [(e.outcome, e.data["revoked"]) for e in reopened] == [("assumed", "assumed")]


@pytest.mark.django_db
def test_returning_after_a_week_keeps_the_durable_resolution(settings: Any) -> None:
    settings.ANALYTICS_DURABLE_DAYS = 7
    conversation = _asked(conversation_start(visitor_id="a"), minutes_ago=40)
    conversations_close_idle()
    Conversation.objects.filter(pk=conversation.pk).update(
        resolved_at=timezone.now() - timedelta(days=8)
    )
    conversation_reopen(conversation_id=conversation.pk)
    conversation.refresh_from_db()
    assert (conversation.state, conversation.resolution) == ("ai_active", "assumed")
    assert [e.outcome for e in _events(conversation, "conversation_reopened")] == ["none"]


@pytest.mark.django_db
def test_the_first_handoff_time_is_kept() -> None:
    conversation = conversation_start(visitor_id="a")
    handoff_request(conversation_id=conversation.pk, trigger="customer_button", reason="help")
    conversation.refresh_from_db()
    first = conversation.escalated_at
    assert first is not None
    conversation_transition(conversation=conversation, to_state="ai_active", reason="handed back")
    handoff_request(conversation_id=conversation.pk, trigger="customer_button", reason="again")
    conversation.refresh_from_db()
    assert conversation.escalated_at == first
