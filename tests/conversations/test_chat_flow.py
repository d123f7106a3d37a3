"""The demo conversations end to end: socket → runtime → offline backend → real HTTP to the
demo shop → reply, on the real ASGI application."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations.models import Conversation, Interrupt, Message, ToolCall, Turn
from conversations.turns.engine import wait_idle
from demo_shop.models import Order, OrderEvent
from tests.conversations.chat import connect, frames_until, turn_ended, verify_customer

pytestmark = pytest.mark.django_db(transaction=True)


def _types(frames: list[dict[str, Any]]) -> list[str]:
    return [f["type"] for f in frames]


async def test_order_status_is_looked_up_and_streamed(
    demo: Any, conversation: Conversation
) -> None:
    await sync_to_async(verify_customer)(conversation.pk)
    ws, ready = await connect(conversation.pk, "visitor-a")
    assert isinstance(ready, dict) and ready["type"] == "ready" and ready["last_seq"] == 0
    await ws.send_json_to(
        {"type": "message", "client_id": "c1", "content": "where is my order 1042?"}
    )
    frames = await frames_until(ws, turn_ended)
    await ws.disconnect()
    await wait_idle()
    kinds = _types(frames)
    assert kinds[0] == "message" and frames[0]["role"] == "user" and frames[0]["seq"] == 1
    assert frames[0]["client_id"] == "c1"
    assert kinds[1] == "turn_start"
    assert "tool_call" in kinds and "tool_result" in kinds and "token" in kinds
    result = next(f for f in frames if f["type"] == "tool_result")
    call = await ToolCall.objects.aget()
    assert result["ok"] is True and result["status_code"] == 200, (
        call.error_kind,
        call.error_message,
    )
    reply = [f for f in frames if f["type"] == "message" and f["role"] == "assistant"][-1]
    streamed = "".join(f["delta"] for f in frames if f["type"] == "token")
    assert streamed.strip() == reply["content"].strip()
    assert "1042" in reply["content"]
    assert frames[-1] == {"type": "turn_end", "turn_id": reply["turn_id"], "status": "completed"}
    seqs = [f["seq"] for f in frames if "seq" in f]
    assert seqs == list(range(1, len(seqs) + 1))
    call = await ToolCall.objects.aget()
    assert call.status == "succeeded" and call.arguments == {"order_number": 1042}


async def test_cancel_waits_for_approval_then_runs_once(
    demo: Any, conversation: Conversation
) -> None:
    await sync_to_async(verify_customer)(conversation.pk)
    ws, _ = await connect(conversation.pk, "visitor-a")
    await ws.send_json_to({"type": "message", "client_id": "c1", "content": "cancel order 1042"})
    frames = await frames_until(ws, turn_ended)
    interrupt_frame = next(f for f in frames if f["type"] == "interrupt")
    assert interrupt_frame["operation"] == "cancelOrder"
    assert interrupt_frame["approver"] == "user"
    assert frames[-1]["status"] == "awaiting_approval"
    assert await Order.objects.filter(number=1042, status="paid").aexists()
    conversation_state = (await Conversation.objects.aget(pk=conversation.pk)).state
    assert conversation_state == "awaiting_approval"

    approval = {
        "type": "approval",
        "interrupt_id": interrupt_frame["interrupt_id"],
        "decision": "approve",
        "arguments_hash": interrupt_frame["arguments_hash"],
    }
    # A double click: the same approval twice.
    await ws.send_json_to(approval)
    await ws.send_json_to(approval)
    frames = await frames_until(ws, turn_ended)
    await wait_idle()
    await ws.disconnect()
    assert "interrupt_resolved" in _types(frames)
    order = await Order.objects.aget(number=1042)
    assert order.status == "cancelled"
    assert await OrderEvent.objects.filter(order=order, kind="cancelled").acount() == 1
    reply = [f for f in frames if f["type"] == "message" and f["role"] == "assistant"][-1]
    assert "1042" in reply["content"]
    assert (await Conversation.objects.aget(pk=conversation.pk)).state == "ai_active"
    assert (await Interrupt.objects.aget()).status == "approved"


async def test_reject_leaves_the_order_alone(demo: Any, conversation: Conversation) -> None:
    await sync_to_async(verify_customer)(conversation.pk)
    ws, _ = await connect(conversation.pk, "visitor-a")
    await ws.send_json_to({"type": "message", "client_id": "c1", "content": "cancel order 1042"})
    frames = await frames_until(ws, turn_ended)
    interrupt_frame = next(f for f in frames if f["type"] == "interrupt")
    await ws.send_json_to(
        {"type": "approval", "interrupt_id": interrupt_frame["interrupt_id"], "decision": "reject"}
    )
    frames = await frames_until(ws, turn_ended)
    await wait_idle()
    await ws.disconnect()
    assert (await Order.objects.aget(number=1042)).status == "paid"
    reply = [f for f in frames if f["type"] == "message" and f["role"] == "assistant"][-1]
    assert "won't" in reply["content"]
    assert (await ToolCall.objects.aget()).status == "rejected"


async def test_approval_for_other_arguments_is_refused(
    demo: Any, conversation: Conversation
) -> None:
    await sync_to_async(verify_customer)(conversation.pk)
    ws, _ = await connect(conversation.pk, "visitor-a")
    await ws.send_json_to({"type": "message", "client_id": "c1", "content": "cancel order 1042"})
    frames = await frames_until(ws, turn_ended)
    interrupt_frame = next(f for f in frames if f["type"] == "interrupt")
    await ws.send_json_to(
        {"type": "approval", "interrupt_id": interrupt_frame["interrupt_id"],
         "decision": "approve", "arguments_hash": "0" * 64}
    )  # fmt: skip
    error = await ws.receive_json_from(timeout=5)
    await ws.disconnect()
    await wait_idle()
    assert error["type"] == "error" and error["code"] == "arguments_mismatch"
    assert (await Order.objects.aget(number=1042)).status == "paid"
    assert (await Interrupt.objects.aget()).status == "pending"


@pytest.mark.parametrize(
    ("amount", "approver"),
    [(20, "user"), (50, "user"), (80, "staff")],
    ids=["below", "at", "above"],
)
async def test_refund_approval_follows_the_amount_rule(
    demo: Any, conversation: Conversation, amount: int, approver: str
) -> None:
    """The demo seeds createRefund with ``amount > REFUND_STAFF_THRESHOLD (50) → staff`` and
    customer approval otherwise (issue 13 item 7)."""
    await sync_to_async(verify_customer)(conversation.pk, email="ben@example.com")
    ws, _ = await connect(conversation.pk, "visitor-a")
    await ws.send_json_to(
        {"type": "message", "client_id": "c1",
         "content": f"I want a refund of {amount} EUR for order 1044 because it arrived broken"}
    )  # fmt: skip
    frames = await frames_until(ws, turn_ended)
    interrupt_frame = next(f for f in frames if f["type"] == "interrupt")
    assert interrupt_frame["approver"] == approver
    interrupt = await Interrupt.objects.aget()
    assert interrupt.arguments["body"]["amount"] == amount
    if approver == "user":
        assert interrupt.approval_rule == {} and interrupt.policy_reason == ""
        await ws.disconnect()
        await wait_idle()
        return
    assert interrupt.approval_rule == {
        "when": {"argument": "amount", "op": ">", "value": 50},
        "approver": "staff",
    }
    assert interrupt.policy_reason == "rule: amount > 50 → staff"
    await ws.send_json_to(
        {"type": "approval", "interrupt_id": interrupt_frame["interrupt_id"],
         "decision": "approve", "arguments_hash": interrupt_frame["arguments_hash"]}
    )  # fmt: skip
    error = await ws.receive_json_from(timeout=5)
    await ws.disconnect()
    await wait_idle()
    assert error["code"] == "permission_denied"


async def test_cancel_that_one_uses_the_earlier_order(
    demo: Any, conversation: Conversation
) -> None:
    await sync_to_async(verify_customer)(conversation.pk)
    ws, _ = await connect(conversation.pk, "visitor-a")
    await ws.send_json_to({"type": "message", "client_id": "c1", "content": "status of order 1042"})
    await frames_until(ws, turn_ended)
    await ws.send_json_to({"type": "message", "client_id": "c2", "content": "cancel that one"})
    frames = await frames_until(ws, turn_ended)
    await ws.disconnect()
    await wait_idle()
    interrupt_frame = next(f for f in frames if f["type"] == "interrupt")
    assert interrupt_frame["arguments"]["order_number"] == 1042


async def test_message_during_pending_approval_waits(demo: Any, conversation: Conversation) -> None:
    await sync_to_async(verify_customer)(conversation.pk)
    ws, _ = await connect(conversation.pk, "visitor-a")
    await ws.send_json_to({"type": "message", "client_id": "c1", "content": "cancel order 1042"})
    frames = await frames_until(ws, turn_ended)
    interrupt_frame = next(f for f in frames if f["type"] == "interrupt")
    await ws.send_json_to({"type": "message", "client_id": "c2", "content": "track order 1043"})
    reminder = await frames_until(ws, lambda f: f.get("role") == "system")
    assert "approve or reject" in reminder[-1]["content"]
    await ws.send_json_to(
        {"type": "approval", "interrupt_id": interrupt_frame["interrupt_id"], "decision": "reject"}
    )
    await frames_until(ws, turn_ended)
    # The waiting message runs after the decision.
    frames = await frames_until(ws, turn_ended)
    await ws.disconnect()
    await wait_idle()
    assert any(f["type"] == "tool_call" and f["operation"] == "getOrderTracking" for f in frames)
    assert await Turn.objects.filter(conversation=conversation).acount() == 2


async def test_two_intents_run_in_order_and_a_write_pauses_the_rest(
    demo: Any, conversation: Conversation
) -> None:
    await sync_to_async(verify_customer)(conversation.pk)
    ws, _ = await connect(conversation.pk, "visitor-a")
    await ws.send_json_to(
        {"type": "message", "client_id": "c1",
         "content": "cancel order 1042 and apply WELCOME10 to 1043"}
    )  # fmt: skip
    frames = await frames_until(ws, turn_ended)
    interrupts = [f for f in frames if f["type"] == "interrupt"]
    assert [i["operation"] for i in interrupts] == ["cancelOrder"]
    await ws.send_json_to(
        {"type": "approval", "interrupt_id": interrupts[0]["interrupt_id"], "decision": "reject"}
    )
    frames = await frames_until(ws, turn_ended)
    await ws.disconnect()
    await wait_idle()
    reply = [f for f in frames if f["type"] == "message" and f["role"] == "assistant"][-1]
    assert "stopped the rest" in reply["content"] and "WELCOME10" in reply["content"]
    assert not any(f["type"] == "interrupt" for f in frames)


async def test_user_message_is_stored_before_the_agent_runs(
    demo: Any, conversation: Conversation
) -> None:
    ws, _ = await connect(conversation.pk, "visitor-a")
    await ws.send_json_to({"type": "message", "client_id": "c1", "content": "hello"})
    first = await ws.receive_json_from(timeout=5)
    assert first["type"] == "message" and first["seq"] == 1
    assert await Message.objects.filter(conversation=conversation, seq=1, role="user").aexists()
    await frames_until(ws, turn_ended)
    await ws.disconnect()
    await wait_idle()


async def _say(ws: Any, client_id: str, content: str) -> list[dict[str, Any]]:
    await ws.send_json_to({"type": "message", "client_id": client_id, "content": content})
    return await frames_until(ws, turn_ended)


async def test_refund_reason_is_asked_and_the_answer_completes_the_proposal(
    demo: Any, conversation: Conversation
) -> None:
    from channels.db import database_sync_to_async

    from tests.conversations.chat import verify_customer

    await database_sync_to_async(verify_customer)(conversation.pk)
    ws, _ = await connect(conversation.pk, "visitor-a")
    frames = await _say(ws, "c1", "I want a refund of 20 EUR for order 1044")
    assert not any(f["type"] == "interrupt" for f in frames)
    asked = (await Conversation.objects.aget(pk=conversation.pk)).context["asked"]
    assert asked["operation"] == "createRefund" and asked["argument"] == "body.reason"
    assert asked["agent"] == "order-actions" and asked["known"]["order_number"] == 1044
    frames = await _say(ws, "c2", "it arrived broken")
    await ws.disconnect()
    await wait_idle()
    interrupt_frame = next(f for f in frames if f["type"] == "interrupt")
    assert interrupt_frame["operation"] == "createRefund"
    assert interrupt_frame["arguments"]["order_number"] == 1044
    assert interrupt_frame["arguments"]["body"]["reason"] == "it arrived broken"
    assert "asked" not in (await Conversation.objects.aget(pk=conversation.pk)).context


async def test_a_question_about_cancelling_is_answered_and_nothing_is_proposed(
    demo: Any, conversation: Conversation
) -> None:
    from channels.db import database_sync_to_async

    from tests.conversations.chat import verify_customer

    await database_sync_to_async(verify_customer)(conversation.pk)
    ws, _ = await connect(conversation.pk, "visitor-a")
    frames = await _say(ws, "c1", "could I cancel order 1042?")
    assert not any(f["type"] == "interrupt" for f in frames)
    assert [f["operation"] for f in frames if f["type"] == "tool_call"] == ["getOrder"]
    reply = [f for f in frames if f["type"] == "message" and f["role"] == "assistant"][-1]
    assert "can still be cancelled" in reply["content"] and "Would you like" in reply["content"]
    assert await Order.objects.filter(number=1042, status="paid").aexists()
    assert not await Interrupt.objects.aexists()
    frames = await _say(ws, "c2", "yes please cancel it")
    await ws.disconnect()
    await wait_idle()
    interrupt_frame = next(f for f in frames if f["type"] == "interrupt")
    assert interrupt_frame["operation"] == "cancelOrder"
    assert interrupt_frame["arguments"]["order_number"] == 1042


async def test_a_question_about_a_code_checks_it_without_an_approval(
    demo: Any, conversation: Conversation
) -> None:
    ws, _ = await connect(conversation.pk, "visitor-a")
    frames = await _say(ws, "c1", "can I use code VIP20?")
    await ws.disconnect()
    await wait_idle()
    assert not any(f["type"] == "interrupt" for f in frames)
    assert [f["operation"] for f in frames if f["type"] == "tool_call"] == ["getDiscountCode"]
    reply = [f for f in frames if f["type"] == "message" and f["role"] == "assistant"][-1]
    assert "VIP20" in reply["content"]


async def test_can_you_cancel_is_a_request(demo: Any, conversation: Conversation) -> None:
    await sync_to_async(verify_customer)(conversation.pk, email="ana@example.com")
    ws, _ = await connect(conversation.pk, "visitor-a")
    frames = await _say(ws, "c1", "Can you cancel order 1042?")
    await ws.disconnect()
    await wait_idle()
    assert next(f for f in frames if f["type"] == "interrupt")["operation"] == "cancelOrder"
