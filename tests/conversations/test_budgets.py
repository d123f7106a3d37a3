"""Budgets per conversation and turn (issue 18 item 3; SECURITY-TESTS row 38, LLM10): each
budget, when crossed, ends the turn with a message the customer sees and a ``budget_exceeded``
escalation naming the budget; never a silent stop."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations import budgets
from conversations.models import Conversation, Message, ToolCall, Turn
from conversations.turns.engine import wait_idle
from escalations.models import Escalation
from tests.conversations.chat import connect, frames_until, turn_ended, verify_customer
from tests.support.openai_server import OpenAITestServer, text_reply, tool_call, tool_calls_reply

pytestmark = pytest.mark.django_db(transaction=True)


async def _turn(conversation: Conversation, content: str, client_id: str = "c1") -> list[Any]:
    ws, _ = await connect(conversation.pk, "visitor-a")
    await ws.send_json_to({"type": "message", "client_id": client_id, "content": content})
    frames = await frames_until(ws, turn_ended)
    await ws.disconnect()
    await wait_idle()
    return frames


def _agent_calls(server: OpenAITestServer) -> int:
    """The agent's (streamed) model calls; the handoff packet's assessment is another."""
    return sum(bool(r.json.get("stream")) for r in server.chat_requests)


async def _assert_budget_handoff(frames: list[Any], budget: str) -> None:
    """The turn failed visibly: a message in the frames, one escalation naming the budget."""
    assert frames[-1]["status"] == "failed"
    said = [f for f in frames if f["type"] == "message" and f.get("role") == "system"]
    assert any("member of our support team" in f["content"] for f in said), frames
    escalation = await Escalation.objects.aget()
    assert escalation.trigger == "budget_exceeded"
    assert f"{budget.replace('_', ' ')} budget" in escalation.reason
    turn = await Turn.objects.order_by("-pk").afirst()
    assert turn is not None and turn.error_code == "budget_exceeded"


ONE_LOOKUP = tool_calls_reply(tool_call("getOrder", {"order_number": 1042}))
TWO_LOOKUPS = tool_calls_reply(
    tool_call("getOrder", {"order_number": 1042}), tool_call("getOrder", {"order_number": 1043})
)
BIG_LOOKUP = tool_calls_reply(tool_call("getOrder", {"order_number": 1042}), prompt_tokens=200)


@pytest.mark.parametrize(
    ("setting", "limit", "first", "budget", "calls"),
    [
        # Two lookups asked for, one allowed: the second never goes out.
        ("TURN_MAX_TOOL_CALLS", 1, TWO_LOOKUPS, "tool_calls", 1),
        # A lookup, then the answer would be a second model call.
        ("TURN_MAX_MODEL_CALLS", 1, ONE_LOOKUP, "model_calls", 1),
        # The first call's 200 prompt tokens cross the conversation's budget midway.
        ("CONVERSATION_MAX_TOKENS", 100, BIG_LOOKUP, "tokens", 1),
    ],
)
async def test_a_budget_crossed_within_a_turn_ends_it(
    openai_backend: Any,
    model_server: OpenAITestServer,
    conversation: Conversation,
    settings: Any,
    setting: str,
    limit: int,
    first: Any,
    budget: str,
    calls: int,
) -> None:
    setattr(settings, setting, limit)
    await sync_to_async(verify_customer)(conversation.pk)
    model_server.enqueue(first, text_reply("never asked for"))
    frames = await _turn(conversation, "where are my orders 1042 and 1043?")
    await _assert_budget_handoff(frames, budget)
    assert await ToolCall.objects.acount() == calls
    assert _agent_calls(model_server) == 1


async def test_tokens_per_conversation(
    openai_backend: Any, model_server: OpenAITestServer, conversation: Conversation, settings: Any
) -> None:
    settings.CONVERSATION_MAX_TOKENS = 400
    await sync_to_async(verify_customer)(conversation.pk)
    model_server.enqueue(text_reply("Order 1042 is paid.", prompt_tokens=480))
    first = await _turn(conversation, "where is my order 1042?")
    assert first[-1]["status"] == "completed"
    assert not await Escalation.objects.aexists()
    # The first turn used 480 + 4 tokens: the next turn is refused when it is claimed (and a
    # turn that crosses the budget midway stops before its next model call).
    model_server.enqueue(text_reply("Order 1043 is paid.", prompt_tokens=480))
    ws, _ = await connect(conversation.pk, "visitor-a")
    await ws.send_json_to({"type": "message", "client_id": "c2", "content": "and order 1043?"})
    frames = await frames_until(
        ws, lambda f: f["type"] == "message" and "amount of work" in f.get("content", "")
    )
    await ws.disconnect()
    await wait_idle()
    assert frames
    escalation = await Escalation.objects.aget()
    assert escalation.trigger == "budget_exceeded" and "tokens budget" in escalation.reason
    assert "(484 of 400)" in escalation.reason
    turn = await Turn.objects.order_by("-pk").afirst()
    assert turn is not None and turn.error_code == "budget_exceeded"
    assert _agent_calls(model_server) == 1


async def test_wall_time_per_turn(
    openai_backend: Any, model_server: OpenAITestServer, conversation: Conversation, settings: Any
) -> None:
    settings.TURN_TIMEOUT_SECONDS = 0.5
    await sync_to_async(verify_customer)(conversation.pk)
    model_server.enqueue(text_reply("too late", delay=3))
    frames = await _turn(conversation, "where is my order 1042?")
    await _assert_budget_handoff(frames, "wall_time")
    assert any("took too long" in f.get("content", "") for f in frames)


async def test_turns_per_conversation(
    openai_backend: Any, model_server: OpenAITestServer, conversation: Conversation, settings: Any
) -> None:
    settings.CONVERSATION_MAX_TURNS = 1
    await sync_to_async(verify_customer)(conversation.pk)
    model_server.enqueue(text_reply("Order 1042 is paid."))
    await _turn(conversation, "where is my order 1042?")
    ws, _ = await connect(conversation.pk, "visitor-a")
    await ws.send_json_to({"type": "message", "client_id": "c2", "content": "and 1043?"})
    frames = await frames_until(ws, lambda f: f["type"] == "escalated" or (
        f["type"] == "message" and "length I can handle" in f.get("content", "")))  # fmt: skip
    await ws.disconnect()
    await wait_idle()
    assert frames
    escalation = await Escalation.objects.aget()
    assert escalation.trigger == "budget_exceeded" and "turns budget" in escalation.reason
    assert await Message.objects.filter(content__contains="length I can handle").aexists()
    assert _agent_calls(model_server) == 1


@pytest.mark.parametrize(
    ("check", "kwargs", "setting", "limit", "over"),
    [
        (budgets.turns_check, {"turn_count": 4}, "CONVERSATION_MAX_TURNS", 3, True),
        (budgets.turns_check, {"turn_count": 3}, "CONVERSATION_MAX_TURNS", 3, False),
        (budgets.model_calls_check, {"model_calls": 2}, "TURN_MAX_MODEL_CALLS", 2, True),
        (budgets.model_calls_check, {"model_calls": 1}, "TURN_MAX_MODEL_CALLS", 2, False),
        (budgets.tool_calls_check, {"tool_calls": 5}, "TURN_MAX_TOOL_CALLS", 5, True),
        (budgets.tool_calls_check, {"tool_calls": 4}, "TURN_MAX_TOOL_CALLS", 5, False),
        (budgets.tokens_check, {"used": 1001}, "CONVERSATION_MAX_TOKENS", 1000, True),
        (budgets.tokens_check, {"used": 1000}, "CONVERSATION_MAX_TOKENS", 1000, False),
    ],
)
def test_checks_at_the_boundary(
    settings: Any, check: Any, kwargs: dict[str, int], setting: str, limit: int, over: bool
) -> None:
    setattr(settings, setting, limit)
    exceeded = check(**kwargs)
    assert (exceeded is not None) is over
    if exceeded is not None:
        assert f"of {limit}" in exceeded.reason and "member of our support team" in (
            exceeded.customer_text
        )


@pytest.mark.parametrize("value", ["0", "-5", "lots"])
def test_budget_settings_refuse_bad_values(monkeypatch: Any, value: str) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from config.settings.base import env_int

    monkeypatch.setenv("CONVERSATION_MAX_TOKENS", value)
    with pytest.raises((ImproperlyConfigured, ValueError)):
        env_int("CONVERSATION_MAX_TOKENS", 500_000, minimum=1)
