"""Staff approvals are live (issue 13 item 10), through the real ASGI application: a pending
staff approval reaches the queue at once (not at the next snapshot), leaves it when decided or
expired, and when staff correct the arguments before approving, the customer's card is told
what was actually approved and executed."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from conversations.interrupts import interrupts_expire_due
from conversations.models import Conversation, Interrupt
from tests.conversations.chat import (
    connect,
    frames_until,
    turn_ended,
    verify_customer,
    visitor_cookie,
)
from tests.escalations.support import idle, next_of, staff_connect

pytestmark = pytest.mark.django_db(transaction=True)

db = database_sync_to_async


def _ben_under_the_staff_rule(conversation: Conversation, settings: Any) -> None:
    """Ben is verified; refunds above 50 wait for staff, others for him."""
    from openapi_import.models import Operation

    verify_customer(conversation.pk, email="ben@example.com")
    Operation.objects.filter(operation_id="createRefund").update(approval="user")
    settings.REFUND_STAFF_THRESHOLD = 50


async def _customer(conversation: Conversation) -> WebsocketCommunicator:
    customer, _ = await connect(conversation.pk, "visitor-a")
    await idle()  # the engine's check at connect
    return customer


async def _ask_refund(customer: WebsocketCommunicator, amount: int) -> dict[str, Any]:
    await customer.send_json_to(
        {"type": "message", "client_id": f"c{amount}",
         "content": f"I want a refund of {amount} EUR for order 1044 because it arrived broken"}
    )  # fmt: skip
    frames = await frames_until(customer, turn_ended)
    cards = [f for f in frames if f["type"] == "interrupt"]
    assert len(cards) == 1, frames
    return cards[0]


async def _no_interrupt_frame(staff: WebsocketCommunicator, within: float = 1.0) -> None:
    try:
        async with asyncio.timeout(within):
            while True:
                frame = await staff.receive_json_from(timeout=within)
                assert not frame["type"].startswith("interrupt_"), frame
    except TimeoutError:
        return


def _decide(user: User, interrupt_id: str, **post: str) -> None:
    client = Client()
    client.force_login(user)
    response = client.post(f"/admin/escalations/interrupts/{interrupt_id}/decide/", post)
    assert response.status_code == 302, response.content[:500]


async def test_a_staff_approval_appears_in_the_queue_at_once_and_leaves_when_decided(
    demo: Any, conversation: Conversation, support_agent: User, settings: Any
) -> None:
    await db(_ben_under_the_staff_rule)(conversation, settings)
    staff, snapshot = await staff_connect(support_agent)
    assert isinstance(snapshot, dict) and snapshot["interrupts"] == []
    customer = await _customer(conversation)

    card = await _ask_refund(customer, 80)

    pending = await next_of(staff, "interrupt_pending")
    row = pending["interrupt"]
    assert row["id"] == card["interrupt_id"] and card["approver"] == "staff"
    assert (row["operation"], row["conversation_id"], row["edited"]) == (
        "createRefund",
        str(conversation.pk),
        False,
    )
    assert "80" in row["summary"]

    await db(_decide)(support_agent, row["id"], decision="reject")

    settled = await next_of(staff, "interrupt_settled")
    assert settled == {"type": "interrupt_settled", "interrupt_id": row["id"], "status": "rejected"}
    resolved = await next_of(customer, "interrupt_resolved", within=10)
    assert (resolved["decision"], resolved["by"], resolved["edited"]) == (
        "rejected",
        "staff",
        False,
    )
    await idle()
    await customer.disconnect()
    await staff.disconnect()


async def test_edited_arguments_reach_the_queue_and_the_customers_card(
    demo: Any, conversation: Conversation, support_agent: User, settings: Any
) -> None:
    await db(_ben_under_the_staff_rule)(conversation, settings)
    staff, _ = await staff_connect(support_agent)
    customer = await _customer(conversation)
    card = await _ask_refund(customer, 80)
    await next_of(staff, "interrupt_pending")
    proposed = card["arguments"]
    corrected = {**proposed, "body": {**proposed["body"], "amount": 60}}

    await db(_decide)(
        support_agent, card["interrupt_id"], decision="approve", arguments=json.dumps(corrected)
    )

    edited = await next_of(staff, "interrupt_pending")
    assert edited["interrupt"]["edited"] is True and "60" in edited["interrupt"]["summary"]
    assert (await next_of(staff, "interrupt_settled"))["status"] == "approved"
    resolved = await next_of(customer, "interrupt_resolved", within=10)
    assert (resolved["decision"], resolved["by"], resolved["edited"]) == ("approved", "staff", True)
    assert resolved["arguments"] == corrected
    assert "60" in resolved["summary"] and "80" not in resolved["summary"]
    assert resolved["arguments_hash"] != card["arguments_hash"]
    await idle()

    # What ran upstream is what the card now shows.
    refunds = await db(_refund_amounts)()
    assert refunds == ["60.00"]
    # A reload renders the decided call too.
    page = await db(_chat_page)(conversation)
    assert 'data-edited="1"' in page and f'id="decided-{card["interrupt_id"]}"' in page
    await customer.disconnect()
    await staff.disconnect()


def _refund_amounts() -> list[str]:
    from demo_shop.models import Refund

    return [
        str(a) for a in Refund.objects.filter(order__number=1044).values_list("amount", flat=True)
    ]


def _chat_page(conversation: Conversation) -> str:
    client = Client(HTTP_COOKIE=visitor_cookie("visitor-a").decode())
    response = client.get(f"/chat/{conversation.pk}/")
    assert response.status_code == 200
    return response.content.decode()


async def test_an_expired_staff_approval_leaves_the_queue(
    demo: Any, conversation: Conversation, support_agent: User, settings: Any
) -> None:
    await db(_ben_under_the_staff_rule)(conversation, settings)
    staff, _ = await staff_connect(support_agent)
    customer = await _customer(conversation)
    card = await _ask_refund(customer, 80)
    await next_of(staff, "interrupt_pending")

    await Interrupt.objects.filter(pk=card["interrupt_id"]).aupdate(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert await db(interrupts_expire_due)() == 1

    settled = await next_of(staff, "interrupt_settled")
    assert (settled["interrupt_id"], settled["status"]) == (card["interrupt_id"], "expired")
    await customer.disconnect()
    await staff.disconnect()


async def test_a_customer_approval_is_not_sent_to_staff(
    demo: Any, conversation: Conversation, support_agent: User, settings: Any
) -> None:
    await db(_ben_under_the_staff_rule)(conversation, settings)
    staff, _ = await staff_connect(support_agent)
    customer = await _customer(conversation)

    card = await _ask_refund(customer, 20)

    assert card["approver"] == "user"
    await _no_interrupt_frame(staff)
    await customer.disconnect()
    await staff.disconnect()


async def test_a_viewer_on_the_queue_is_not_sent_staff_approvals(
    demo: Any, conversation: Conversation, viewer: User, support_agent: User, settings: Any
) -> None:
    # As in the snapshot: only those who may decide see what waits for a decision.
    await db(_ben_under_the_staff_rule)(conversation, settings)
    watcher, snapshot = await staff_connect(viewer)
    assert isinstance(snapshot, dict) and snapshot["interrupts"] == []
    agent, _ = await staff_connect(support_agent)
    customer = await _customer(conversation)

    await _ask_refund(customer, 80)

    assert (await next_of(agent, "interrupt_pending"))["interrupt"]["operation"] == "createRefund"
    await _no_interrupt_frame(watcher)
    for socket in (customer, agent, watcher):
        await socket.disconnect()
