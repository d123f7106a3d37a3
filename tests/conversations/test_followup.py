"""Answers to the agent's own questions, and questions about an action that are answered, not
proposed (conversations/agent/followup.py, routing.mood; issue 13 items 8 and 9)."""

from __future__ import annotations

import pytest

from conversations.agent.followup import Asked, answer_fill
from conversations.agent.routing import is_new_request, mood
from tests.conversations.test_routing import DEMO_TOOLS

REFUND = DEMO_TOOLS["createRefund"]
ASKED_REASON = Asked(
    "createRefund", ("body.reason",), {"order_number": 1044, "body": {"amount": 20}}
)


def test_a_free_text_answer_is_the_asked_reason() -> None:
    fill = answer_fill(ASKED_REASON, REFUND.parameters, "it arrived broken")
    assert fill is not None and not fill.missing
    assert fill.arguments == {
        "order_number": 1044,
        "body": {"amount": 20, "reason": "it arrived broken"},
    }


def test_an_answer_fills_what_it_can_and_leaves_the_rest_asked() -> None:
    asked = Asked("createRefund", ("body.amount", "body.reason"), {"order_number": 1042})
    fill = answer_fill(asked, REFUND.parameters, "20")
    assert fill is not None and fill.missing == ["body.reason"]
    assert fill.arguments == {"order_number": 1042, "body": {"amount": 20}}


def test_an_order_number_answer_needs_a_number() -> None:
    asked = Asked("cancelOrder", ("order_number",), {})
    assert answer_fill(asked, DEMO_TOOLS["cancelOrder"].parameters, "no idea") is None


@pytest.mark.parametrize(
    ("text", "new"),
    [
        ("it arrived broken", False),
        ("because the handle came off", False),
        ("it was delivered broken", False),
        ("where is order 1043?", True),
        ("cancel order 1043 instead", True),
        ("talk to a human", True),
        ("thanks", True),
    ],
)
def test_answer_or_new_request(text: str, new: bool) -> None:
    tools = [DEMO_TOOLS[name] for name in ("cancelOrder", "createRefund")]
    assert is_new_request(text, tools, operation="createRefund") is new


QUESTIONS = [
    "can I use code VIP20?",
    "could I cancel order 1042?",
    "is it possible to get a refund for 1042?",
    "Can I still cancel order 1042?",
    "may I return order 1044?",
    "would it be possible to cancel order 1042?",
    "Is there a way to cancel order 1042?",
    "can order 1042 still be cancelled?",
    "could we apply WELCOME10 to order 1042?",
    "am I able to get a refund on order 1044?",
    "I wonder if I could cancel order 1042",
    "I'd like to know if I can cancel order 1042",
    "is order 1042 cancellable?",
    "how do I cancel order 1042?",
]
REQUESTS = [
    "cancel order 1042",
    "Can you cancel order 1042?",
    "could you cancel order 1042 please",
    "please cancel order 1042",
    "I'd like to cancel order 1042",
    "I would like to cancel order 1042",
    "would you cancel order 1042?",
    "apply WELCOME10 to order 1042",
    "I need to cancel order 1042",
    "yes please cancel it",
    "I want a refund of 20 EUR for order 1044 because it arrived broken",
    "Could I please cancel order 1042?",
    "will you apply code WELCOME10 to order 1042?",
    "ok cancel it",
]


@pytest.mark.parametrize("text", QUESTIONS)
def test_a_question_about_an_action_is_a_question(text: str) -> None:
    assert mood(text) == "question"


@pytest.mark.parametrize("text", REQUESTS)
def test_a_request_is_a_request(text: str) -> None:
    assert mood(text) == "request"
