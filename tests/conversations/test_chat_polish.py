"""What the customer reads (issue 19.6): replies as sentences, staff by display name, and
clarifications with the agents' display names as clickable options that answer."""

from __future__ import annotations

from typing import Any, cast

import pytest
from django.contrib.auth.models import User

from conversations.agent.replies import summarize_result
from conversations.models import Conversation
from conversations.turns.engine import wait_idle
from escalations.services import public_name
from tests.conversations.chat import connect, frames_until, turn_ended
from tests.factories import StaffFactory


@pytest.mark.parametrize(
    ("operation", "result", "reply"),
    [
        ("getRefund", {"id": 3, "status": "succeeded"}, "Refund 3 has succeeded."),
        ("getPayment", {"id": 8, "status": "failed"}, "Payment 8 has failed."),
        ("getPayout", {"id": 9, "status": "processing"}, "Payout 9 is being processed."),
        ("getOrder", {"number": 1042, "status": "paid"}, "Order 1042 is paid."),
        (
            "getOrder",
            {"number": 1042, "status": "partially_refunded"},
            "Order 1042 is partially refunded.",
        ),
    ],
)
def test_statuses_read_as_sentences(operation: str, result: dict[str, Any], reply: str) -> None:
    assert summarize_result(operation, result).startswith(reply)
    assert " is succeeded" not in summarize_result(operation, result)


def test_an_action_that_happened_reads_as_such() -> None:
    text = summarize_result("createRefund", {"id": 3, "status": "succeeded", "amount": "5.00"})
    assert text.startswith("Done. Refund 3 has succeeded.")


@pytest.mark.parametrize(
    ("first", "last", "shown"),
    [("Ana", "Lima", "Ana"), ("", "", "Support"), ("  ", "Lima", "Lima")],
)
def test_staff_appear_by_display_name_never_username(
    db: None, first: str, last: str, shown: str
) -> None:
    user = cast(User, StaffFactory(username="agent_x42", first_name=first, last_name=last))
    assert public_name(user) == shown
    assert "agent_x42" not in public_name(user)


@pytest.mark.django_db(transaction=True)
async def test_clarification_offers_display_names_that_route_when_clicked(
    demo: Any, conversation: Conversation
) -> None:
    ws, _ = await connect(conversation.pk, "visitor-a")
    await ws.send_json_to({"type": "message", "client_id": "c1", "content": "my order"})
    frames = await frames_until(ws, turn_ended)
    (question,) = [f for f in frames if f["type"] == "clarification"]
    assert question["options"][:2] == ["Order lookup", "Order actions"]
    assert "order-lookup" not in question["content"] and "Order lookup" in question["content"]

    # The customer clicks "Order lookup": the option's text routes to that agent.
    await ws.send_json_to({"type": "message", "client_id": "c2", "content": "Order lookup"})
    answer = await frames_until(ws, turn_ended)
    await ws.disconnect()
    await wait_idle()
    assert not [f for f in answer if f["type"] == "clarification"], answer
    chosen = await Conversation.objects.select_related("current_agent").aget(pk=conversation.pk)
    assert chosen.current_agent is not None and chosen.current_agent.slug == "order-lookup"
