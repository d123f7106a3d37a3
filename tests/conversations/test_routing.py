"""Intent splitting, tool scoring and agent routing (conversations/agent/routing.py).

The demo tools below are the demo shop's operations as the importer turns them into tools
(operationId, "summary + description", one JSON Schema with path/query/header parameters and a
``body``); the offline backend tests reuse them.
"""

from __future__ import annotations

from typing import Any

import pytest

from conversations.agent.routing import (
    TOOL_THRESHOLD,
    AgentProfile,
    concepts,
    is_small_talk,
    route,
    score_tools,
    split_intents,
    stem,
    wants_human,
)
from conversations.llm.types import ToolSpec

ORDER_NUMBER = {
    "description": "The order number, e.g. 1042.",
    "minimum": 1,
    "title": "Order Number",
    "type": "integer",
}
IDEMPOTENCY_KEY = {
    "anyOf": [{"maxLength": 255, "type": "string"}, {"type": "null"}],
    "description": "Optional unique key (e.g. a UUID) that makes retries safe.",
    "title": "Idempotency-Key",
}


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


DEMO_TOOLS: dict[str, ToolSpec] = {
    tool.name: tool
    for tool in (
        ToolSpec(
            "getOrder",
            "Get an order\n\nLook up one order by its number: status (pending, paid, shipped, "
            "delivered, cancelled, refunded), items, subtotal, discount, total, amount refunded "
            "and the customer's name and email. Read-only. Use it to answer \"what is the "
            'status of my order?".',
            _schema({"order_number": ORDER_NUMBER}, ["order_number"]),
        ),
        ToolSpec(
            "listOrders",
            "List a customer's orders\n\nList the orders placed with a customer email address, "
            "newest first (at most 50). Read-only. Use it when the customer does not know their "
            "order number.",
            _schema(
                {
                    "email": {
                        "description": "The customer's email address.",
                        "maxLength": 254,
                        "minLength": 3,
                        "type": "string",
                    }
                },
                ["email"],
            ),
        ),
        ToolSpec(
            "getOrderTracking",
            "Track an order's shipment\n\nWhere the parcel is: carrier, tracking number and "
            "link, shipment status, estimated delivery date and the carrier's scan events. "
            "`shipped` is false (and the shipment fields null) while the order has not left the "
            'warehouse. Read-only. Use it to answer "where is my order?" or "when will it '
            'arrive?".',
            _schema({"order_number": ORDER_NUMBER}, ["order_number"]),
        ),
        ToolSpec(
            "cancelOrder",
            "Cancel an order\n\nCancel an order that has not shipped yet (status pending or "
            "paid); any payment is released. This cannot be undone. Shipped or delivered orders "
            "cannot be cancelled (409): offer a refund once delivered instead. Send an "
            "`Idempotency-Key` to retry safely.",
            _schema(
                {
                    "order_number": ORDER_NUMBER,
                    "Idempotency-Key": IDEMPOTENCY_KEY,
                    "body": {
                        "anyOf": [
                            {
                                "properties": {
                                    "reason": {
                                        "default": "",
                                        "description": "Why the customer cancels (optional).",
                                        "maxLength": 500,
                                        "type": "string",
                                    }
                                },
                                "title": "CancelOrderIn",
                                "type": "object",
                            },
                            {"type": "null"},
                        ]
                    },
                },
                ["order_number"],
            ),
        ),
        ToolSpec(
            "getDiscountCode",
            "Check a discount code\n\nCheck whether a discount code exists and can be used now: "
            "what it gives (percent or amount off), whether it is valid, and if not why "
            "(inactive, expired or used up). Read-only; it does not apply the code.",
            _schema(
                {
                    "code": {
                        "description": "The code, e.g. WELCOME10.",
                        "maxLength": 40,
                        "type": "string",
                    }
                },
                ["code"],
            ),
        ),
        ToolSpec(
            "applyDiscountCode",
            "Apply a discount code to an order\n\nApply a discount code to an order that has "
            "not shipped yet and recompute its total. One code per order. Unknown, inactive, "
            "expired or used-up codes are refused (422); shipped or cancelled orders are "
            "refused (409). Changes what the customer pays. Send an `Idempotency-Key` to retry "
            "safely.",
            _schema(
                {
                    "order_number": ORDER_NUMBER,
                    "Idempotency-Key": IDEMPOTENCY_KEY,
                    "body": {
                        "properties": {
                            "code": {
                                "description": "The code, e.g. WELCOME10.",
                                "maxLength": 40,
                                "minLength": 1,
                                "type": "string",
                            }
                        },
                        "required": ["code"],
                        "title": "ApplyDiscountIn",
                        "type": "object",
                    },
                },
                ["order_number", "body"],
            ),
        ),
        ToolSpec(
            "createRefund",
            "Refund money on an order\n\nRefund part or all of a shipped or delivered order to "
            "the customer's original payment method. Moves money: the amount must not exceed "
            "what is left to refund (`refundable_amount` on the order; 422 otherwise). Orders "
            "that have not shipped should be cancelled instead (409). Send an `Idempotency-Key` "
            "to retry safely.",
            _schema(
                {
                    "order_number": ORDER_NUMBER,
                    "Idempotency-Key": IDEMPOTENCY_KEY,
                    "body": {
                        "properties": {
                            "amount": {
                                "anyOf": [
                                    {"exclusiveMinimum": 0.0, "type": "number"},
                                    {"type": "string"},
                                ],
                                "description": "Amount to refund, e.g. 12.50.",
                            },
                            "reason": {
                                "description": "Why the money is returned.",
                                "maxLength": 500,
                                "minLength": 1,
                                "type": "string",
                            },
                        },
                        "required": ["amount", "reason"],
                        "title": "RefundIn",
                        "type": "object",
                    },
                },
                ["order_number", "body"],
            ),
        ),
        ToolSpec(
            "listRefunds",
            "List an order's refunds\n\nThe refunds already made on an order, oldest first, "
            "with amount, reason and status. Read-only.",
            _schema({"order_number": ORDER_NUMBER}, ["order_number"]),
        ),
    )
}


def demo_agents() -> list[AgentProfile]:
    """The e-commerce template's agents, described as the template would."""
    tools = DEMO_TOOLS
    return [
        AgentProfile(
            "Order lookup",
            "Looks up orders: their status, items and totals, a customer's order history, and "
            "where a parcel is (shipment tracking and delivery dates).",
            [tools["getOrder"], tools["listOrders"], tools["getOrderTracking"]],
        ),
        AgentProfile(
            "Order actions",
            "Changes orders on the customer's behalf: cancels orders that have not shipped yet "
            "and refunds money on delivered ones.",
            [tools["cancelOrder"], tools["createRefund"]],
        ),
        AgentProfile(
            "Discounts",
            "Checks whether discount codes are valid and applies them to open orders.",
            [tools["getDiscountCode"], tools["applyDiscountCode"]],
        ),
        AgentProfile(
            "General help",
            "Greets customers, answers general questions about the shop and hands the "
            "conversation to a human when asked.",
            [],
            is_fallback=True,
        ),
    ]


# -- text normalisation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "same_as"),
    [
        ("orders", "order"),
        ("cancelled", "cancel"),
        ("canceled", "cancel"),
        ("tracking", "track"),
        ("shipped", "ship"),
        ("deliveries", "delivery"),
        ("boxes", "box"),
        ("arrived", "arrive"),
    ],
)
def test_stem_meets_inflections(word: str, same_as: str) -> None:
    assert stem(word) == stem(same_as)


def test_stem_keeps_words_ending_in_s_that_are_not_plurals() -> None:
    assert stem("status") == "status"
    assert stem("address") == "address"


def test_concepts_fold_synonyms_and_drop_stop_words_and_numbers() -> None:
    assert concepts("Where is my package 1042?") == ["track", "track"]
    assert concepts("I want my money back") == ["refund"]
    assert concepts("Stop the purchase") == ["cancel", "order"]
    assert concepts("promo coupon") == ["discount", "discount"]


# -- splitting intents -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "intents"),
    [
        (
            "cancel order 1042 and apply WELCOME10 to 1043",
            ["cancel order 1042", "apply WELCOME10 to 1043"],
        ),
        ("check 1042; then track 1043", ["check 1042", "track 1043"]),
        ("Where is order 1042, also cancel 1043", ["Where is order 1042", "cancel 1043"]),
        ("track 1042 then cancel 1043", ["track 1042", "cancel 1043"]),
        (
            "Cancel order 1042. Apply SPRING5 to 1043.",
            ["Cancel order 1042.", "Apply SPRING5 to 1043."],
        ),
        ("track 1042 and cancel it", ["track 1042", "cancel it"]),
        # "and" without an object on the left is one request: the strongest tool wins.
        ("cancel and refund order 1042", ["cancel and refund order 1042"]),
        ("track orders 1042 and 1043", ["track orders 1042 and 1043"]),
        # Parts that ask for nothing stay with their neighbour.
        ("Hi. Where is my order 1042?", ["Hi. Where is my order 1042?"]),
        (
            "what orders do I have? my email is ben@example.com",
            ["what orders do I have? my email is ben@example.com"],
        ),
        (
            "I want a refund of 20 EUR for order 1044 because it arrived broken and scratched",
            ["I want a refund of 20 EUR for order 1044 because it arrived broken and scratched"],
        ),
        ("cancel 1042; track 1043", ["cancel 1042", "track 1043"]),
        ("hello", ["hello"]),
        ("", []),
    ],
)
def test_split_intents(text: str, intents: list[str]) -> None:
    assert split_intents(text) == intents


def test_short_messages_are_never_split() -> None:
    assert split_intents("cancel; track") == ["cancel; track"]


# -- scoring tools -----------------------------------------------------------------------------

ALL_TOOLS = list(DEMO_TOOLS.values())


@pytest.mark.parametrize(
    ("text", "best"),
    [
        # "where"/"track"/"arrive" belong to the shipping concept, which is in the tracking
        # tool's operationId: tracking beats the plain order lookup.
        ("where is my order 1042?", "getOrderTracking"),
        ("track order #1043", "getOrderTracking"),
        ("when will order 1043 arrive?", "getOrderTracking"),
        ("what's the status of order 1042", "getOrder"),
        ("check 1042", "getOrder"),
        ("cancel order 1042", "cancelOrder"),
        ("cancel that one", "cancelOrder"),
        ("apply code WELCOME10 to order 1042", "applyDiscountCode"),
        ("is SPRING5 still valid?", "getDiscountCode"),
        ("I want a refund of 20 EUR for order 1044 because it arrived broken", "createRefund"),
        ("I want to get a refund for order 1044", "createRefund"),
        ("has my refund for 1044 gone through?", "listRefunds"),
        ("what orders do I have? my email is ben@example.com", "listOrders"),
    ],
)
def test_best_tool_for_demo_messages(text: str, best: str) -> None:
    ranked = score_tools(text, ALL_TOOLS)
    assert ranked[0][0] == best
    assert ranked[0][1] >= TOOL_THRESHOLD
    assert ranked[0][1] > ranked[1][1]


@pytest.mark.parametrize("text", ["hello", "thanks!", "what is the weather like", ""])
def test_nothing_fits_unrelated_messages(text: str) -> None:
    assert all(score < TOOL_THRESHOLD for _, score in score_tools(text, ALL_TOOLS))


def test_a_code_like_token_favours_discount_tools() -> None:
    # No discount words at all: only the shape of the token points at the discount tools.
    ranked = dict(score_tools("what about WELCOME10", ALL_TOOLS))
    assert ranked["getDiscountCode"] > ranked["getOrder"]
    assert ranked["getDiscountCode"] >= TOOL_THRESHOLD


def test_an_amount_favours_refunds() -> None:
    with_amount = dict(score_tools("refund 20 EUR on order 1044", ALL_TOOLS))
    without = dict(score_tools("refund on order 1044", ALL_TOOLS))
    assert with_amount["createRefund"] - without["createRefund"] >= 2.0
    assert with_amount["listRefunds"] - without["listRefunds"] < 0.5


def test_context_lets_a_reference_fill_the_order_number() -> None:
    plain = dict(score_tools("cancel it", ALL_TOOLS))
    remembered = dict(score_tools("cancel it", ALL_TOOLS, context={"order_number": 1042}))
    assert remembered["cancelOrder"] > plain["cancelOrder"]


def test_scores_are_deterministic_and_ties_go_by_name() -> None:
    twin_a = ToolSpec("bTool", "Cancel a booking", {"type": "object", "properties": {}})
    twin_b = ToolSpec("aTool", "Cancel a booking", {"type": "object", "properties": {}})
    first = score_tools("cancel my booking", [twin_a, twin_b])
    assert first == score_tools("cancel my booking", [twin_a, twin_b])
    assert [name for name, _ in first] == ["aTool", "bTool"]
    assert first[0][1] == first[1][1]


def test_camel_case_operation_ids_count_as_words() -> None:
    tools = [
        ToolSpec("listInvoices", "", {"type": "object", "properties": {}}),
        ToolSpec("getWeatherReport", "", {"type": "object", "properties": {}}),
    ]
    assert score_tools("show me the weather report", tools)[0][0] == "getWeatherReport"


# -- routing to agents -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "agent", "tool"),
    [
        ("where is my order 1042?", "Order lookup", "getOrderTracking"),
        ("track order #1043", "Order lookup", "getOrderTracking"),
        ("what orders do I have? my email is ben@example.com", "Order lookup", "listOrders"),
        ("cancel order 1042", "Order actions", "cancelOrder"),
        ("cancel my order", "Order actions", "cancelOrder"),
        (
            "I want a refund of 20 EUR for order 1044 because it arrived broken",
            "Order actions",
            "createRefund",
        ),
        ("apply code WELCOME10 to order 1042", "Discounts", "applyDiscountCode"),
        ("is SPRING5 still valid?", "Discounts", "getDiscountCode"),
        ("hello", "General help", None),
        ("thanks a lot!", "General help", None),
    ],
)
def test_route_demo_messages(text: str, agent: str, tool: str | None) -> None:
    decision = route(text, demo_agents())
    assert (decision.agent, decision.tool) == (agent, tool)
    assert decision.clarification is None
    assert not decision.escalate
    assert set(decision.scores) == {a.name for a in demo_agents()}


@pytest.mark.parametrize("text", ["order", "my order", "1042"])
def test_an_ambiguous_message_gets_a_clarification_naming_the_candidates(text: str) -> None:
    decision = route(text, demo_agents())
    assert decision.agent is None
    assert decision.clarification is not None
    assert "Order lookup" in decision.clarification
    assert "Order actions" in decision.clarification
    assert decision.clarification.endswith("?")


def test_a_request_nothing_matches_gets_a_clarification_not_the_fallback() -> None:
    decision = route("I have a problem with the weather", demo_agents())
    assert decision.agent is None
    assert decision.clarification is not None
    assert "Discounts" in decision.clarification


@pytest.mark.parametrize(
    "text",
    [
        "I want to talk to a human",
        "Can I speak to someone?",
        "real person please",
        "agent please",
        "Human!",
        "I'd like to talk to your support staff",
        "connect me with a representative",
        "let me chat with a real human",
    ],
)
def test_escalation_requests_are_recognised(text: str) -> None:
    assert wants_human(text)
    decision = route(text, demo_agents())
    assert decision.escalate
    assert decision.agent == "General help"
    assert decision.clarification is None


@pytest.mark.parametrize(
    "text",
    ["cancel order 1042", "the agent said my parcel is late", "is a person allowed two codes?"],
)
def test_ordinary_messages_are_not_escalations(text: str) -> None:
    assert not wants_human(text)
    assert not route(text, demo_agents()).escalate


def test_escalation_without_a_fallback_agent_still_escalates() -> None:
    agents = [agent for agent in demo_agents() if not agent.is_fallback]
    decision = route("talk to a human", agents)
    assert decision.escalate
    assert decision.agent is None


def test_a_follow_up_without_an_action_stays_with_the_previous_agent() -> None:
    decision = route("1042", demo_agents(), context={"agent": "Order actions"})
    assert decision.agent == "Order actions"
    assert decision.clarification is None
    # A new request is routed on its own merits, whatever came before.
    assert route("is SPRING5 valid?", demo_agents(), context={"agent": "Order actions"}).agent == (
        "Discounts"
    )


def test_context_resolves_cancel_that_one_to_order_actions() -> None:
    decision = route("cancel that one", demo_agents(), context={"order_number": 1042})
    assert decision.agent == "Order actions"
    assert decision.tool == "cancelOrder"


def test_route_is_deterministic() -> None:
    first = route("where is my order 1042?", demo_agents())
    second = route("where is my order 1042?", demo_agents())
    assert first == second


def test_route_without_agents_decides_nothing() -> None:
    decision = route("cancel order 1042", [])
    assert decision.agent is None
    assert decision.scores == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("hello", True), ("Thanks a lot!", True), ("good morning", True), ("cancel 1042", False)],
)
def test_is_small_talk(text: str, expected: bool) -> None:
    assert is_small_talk(text) is expected
