"""The offline backend carrying the demo conversations, and the replies it writes
(conversations/llm/offline.py, conversations/agent/replies.py)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from conversations.agent.replies import (
    ask_for,
    greeting,
    help_text,
    parse_tool_output,
    summarize_result,
)
from conversations.llm import registry as registry_module
from conversations.llm.base import BackendConfig
from conversations.llm.offline import (
    DEFAULT_MODEL,
    OfflineBackend,
    offline_factory,
    register,
    register_default,
)
from conversations.llm.registry import BackendRegistry
from conversations.llm.types import (
    ChatMessage,
    Completion,
    Done,
    LLMConfigurationError,
    TokenDelta,
    ToolCall,
    ToolSpec,
)
from tests.conversations.test_routing import DEMO_TOOLS

TOOLS = list(DEMO_TOOLS.values())

ORDER_1042 = {
    "number": 1042,
    "status": "paid",
    "customer_name": "Ana Lopez",
    "customer_email": "ana@example.com",
    "currency": "EUR",
    "items": [
        {"sku": "MUG-01", "name": "Mug", "quantity": 2, "unit_price": "12.50"},
        {"sku": "TEE-02", "name": "T-shirt", "quantity": 1, "unit_price": "34.90"},
    ],
    "subtotal": "59.90",
    "discount_code": None,
    "discount_amount": "0.00",
    "total": "59.90",
    "refunded_amount": "0.00",
}
TRACKING_1043 = {
    "order_number": 1043,
    "order_status": "shipped",
    "shipped": True,
    "carrier": "DHL",
    "tracking_number": "JD014600006281",
    "status": "in_transit",
    "estimated_delivery": "2026-11-25",
    "events": [
        {"at": "2026-11-20T10:00:00Z", "location": "Leipzig", "description": "Handed to DHL"},
        {"at": "2026-11-21T08:30:00Z", "location": "Berlin", "description": "At sorting centre"},
    ],
}


def user(text: str) -> ChatMessage:
    return ChatMessage(role="user", content=text)


def said(text: str) -> ChatMessage:
    return ChatMessage(role="assistant", content=text)


def called(call_id: str, name: str, arguments: dict[str, Any]) -> ChatMessage:
    call = ToolCall(id=call_id, name=name, arguments=arguments, raw_arguments=json.dumps(arguments))
    return ChatMessage(role="assistant", tool_calls=(call,))


def result(call_id: str, content: str) -> ChatMessage:
    return ChatMessage(role="tool", content=content, tool_call_id=call_id)


@pytest.fixture
def backend() -> OfflineBackend:
    return OfflineBackend(BackendConfig(name="offline", kind="offline"), today=date(2026, 11, 18))


# -- the demo conversations --------------------------------------------------------------------

DEMO_CALLS = [
    ([user("where is my order 1042?")], "getOrderTracking", {"order_number": 1042}),
    ([user("track order #1043")], "getOrderTracking", {"order_number": 1043}),
    ([user("what's the status of order 1042?")], "getOrder", {"order_number": 1042}),
    ([user("cancel order 1042")], "cancelOrder", {"order_number": 1042}),
    (
        [user("apply code WELCOME10 to order 1042")],
        "applyDiscountCode",
        {"order_number": 1042, "body": {"code": "WELCOME10"}},
    ),
    ([user("is SPRING5 still valid?")], "getDiscountCode", {"code": "SPRING5"}),
    (
        [user("I want a refund of 20 EUR for order 1044 because it arrived broken")],
        "createRefund",
        {"order_number": 1044, "body": {"amount": 20, "reason": "it arrived broken"}},
    ),
    (
        [user("what orders do I have? my email is ben@example.com")],
        "listOrders",
        {"email": "ben@example.com"},
    ),
    # "cancel that one" after talking about 1042: the number comes from the earlier turn.
    (
        [
            user("where is my order 1042?"),
            called("call_1", "getOrderTracking", {"order_number": 1042}),
            result("call_1", json.dumps({**TRACKING_1043, "order_number": 1042})),
            said("Order 1042 is in transit with DHL."),
            user("cancel that one"),
        ],
        "cancelOrder",
        {"order_number": 1042},
    ),
    # Context from the user's words alone, without any tool call yet.
    (
        [user("I have a question about order 1042"), said("Sure, what is it?"), user("cancel it")],
        "cancelOrder",
        {"order_number": 1042},
    ),
    # The answer to "Which order number is it about?" completes the pending request.
    (
        [user("cancel my order"), said("Which order number is it about?"), user("1042")],
        "cancelOrder",
        {"order_number": 1042},
    ),
    (
        [
            user("what orders do I have?"),
            said("What email address did you use for your orders?"),
            user("ben@example.com"),
        ],
        "listOrders",
        {"email": "ben@example.com"},
    ),
]


@pytest.mark.parametrize(("messages", "name", "arguments"), DEMO_CALLS)
async def test_demo_conversation_calls_the_right_tool(
    backend: OfflineBackend, messages: list[ChatMessage], name: str, arguments: dict[str, Any]
) -> None:
    completion = await backend.complete(messages, tools=TOOLS)
    assert [(call.name, call.arguments) for call in completion.tool_calls] == [(name, arguments)]
    assert json.loads(completion.tool_calls[0].raw_arguments) == arguments
    assert completion.finish_reason == "tool_calls"
    assert completion.text == ""


DEMO_REPLIES = [
    ([user("cancel my order")], ["Which order number"]),
    ([user("apply a discount code to order 1042")], ["Which discount code"]),
    ([user("refund order 1044")], ["amount", "reason"]),
    ([user("hello")], ["Hi!", "cancel an order", "check a discount code"]),
    ([user("thanks!")], ["You're welcome"]),
    ([user("what is the meaning of life")], ["not sure I understood", "track an order"]),
    ([user("I want to talk to a human")], ["support team"]),
]


@pytest.mark.parametrize(("messages", "fragments"), DEMO_REPLIES)
async def test_demo_conversation_replies_without_a_tool(
    backend: OfflineBackend, messages: list[ChatMessage], fragments: list[str]
) -> None:
    completion = await backend.complete(messages, tools=TOOLS)
    assert completion.tool_calls == ()
    assert completion.finish_reason == "stop"
    for fragment in fragments:
        assert fragment in completion.text


async def test_a_failed_lookup_is_not_a_reference_for_the_next_turn(
    backend: OfflineBackend,
) -> None:
    messages = [
        user("where is order 9999"),
        called("call_1", "getOrderTracking", {"order_number": 9999}),
        result(
            "call_1",
            '<tool_output operation="getOrderTracking" status="404" ok="false">\n'
            '{"detail": "Order 9999 not found.", "code": "order_not_found"}\n</tool_output>',
        ),
        said("I couldn't find order 9999."),
        user("cancel it"),
    ]
    completion = await backend.complete(messages, tools=TOOLS)
    assert completion.tool_calls == ()
    assert completion.text == "Which order number is it about?"


async def test_escalation_uses_an_escalation_tool_when_one_is_offered(
    backend: OfflineBackend,
) -> None:
    escalate = ToolSpec(
        "escalate_to_human",
        "Hand the conversation to a human support agent.",
        {
            "type": "object",
            "properties": {"reason": {"type": "string"}},
            "required": ["reason"],
        },
    )
    completion = await backend.complete(
        [user("I want to talk to a human")], tools=[*TOOLS, escalate]
    )
    assert [(c.name, c.arguments) for c in completion.tool_calls] == [
        ("escalate_to_human", {"reason": "I want to talk to a human"})
    ]


async def test_without_tools_it_still_answers(backend: OfflineBackend) -> None:
    completion = await backend.complete([user("cancel order 1042")], tools=[])
    assert completion.tool_calls == ()
    assert "support team" in completion.text
    assert (await backend.complete([], tools=TOOLS)).text.startswith("Hi!")


# -- replies from tool results -----------------------------------------------------------------


def _after(call_name: str, arguments: dict[str, Any], content: str) -> list[ChatMessage]:
    return [user("question"), called("call_1", call_name, arguments), result("call_1", content)]


@pytest.mark.parametrize(
    "content",
    [
        json.dumps(ORDER_1042),
        json.dumps({"status_code": 200, "data": ORDER_1042}),
        '<tool_output operation="getOrder" status="200">\n'
        + json.dumps(ORDER_1042)
        + "\n</tool_output>",
        "<tool_output>" + json.dumps({"status_code": 200, "data": ORDER_1042}) + "</tool_output>",
    ],
    ids=["plain", "status-wrapper", "delimited", "delimited-wrapper"],
)
async def test_reply_from_an_order_mentions_its_status_number_and_total(
    backend: OfflineBackend, content: str
) -> None:
    completion = await backend.complete(
        _after("getOrder", {"order_number": 1042}, content), tools=TOOLS
    )
    assert completion.tool_calls == ()
    assert "Order 1042 is paid" in completion.text
    assert "59.90 EUR" in completion.text
    assert "2 x Mug" in completion.text


async def test_reply_from_tracking_names_carrier_status_and_delivery_date(
    backend: OfflineBackend,
) -> None:
    completion = await backend.complete(
        _after("getOrderTracking", {"order_number": 1043}, json.dumps(TRACKING_1043)), tools=TOOLS
    )
    text = completion.text
    assert "Order 1043 is in transit with DHL" in text
    assert "JD014600006281" in text
    assert "25 November 2026" in text
    assert "At sorting centre in Berlin" in text


async def test_reply_from_a_404_says_what_was_not_found(backend: OfflineBackend) -> None:
    content = (
        '<tool_output operation="getOrder" status="404" ok="false">\n'
        '{"detail": "Order 9999 not found.", "code": "order_not_found"}\n</tool_output>'
    )
    completion = await backend.complete(
        _after("getOrder", {"order_number": 9999}, content), tools=TOOLS
    )
    assert completion.text.startswith("I couldn't find order 9999.")


async def test_after_the_first_result_the_next_intent_of_the_message_is_called(
    backend: OfflineBackend,
) -> None:
    first = await backend.complete(
        [user("cancel order 1042 and apply WELCOME10 to 1043")], tools=TOOLS
    )
    assert [(c.id, c.name, c.arguments) for c in first.tool_calls] == [
        ("call_1", "cancelOrder", {"order_number": 1042})
    ]
    cancelled = json.dumps({"status_code": 200, "data": {**ORDER_1042, "status": "cancelled"}})
    second = await backend.complete(
        [
            user("cancel order 1042 and apply WELCOME10 to 1043"),
            first.as_message(),
            result("call_1", cancelled),
        ],
        tools=TOOLS,
    )
    assert "Order 1042 is now cancelled" in second.text
    assert [(c.id, c.name, c.arguments) for c in second.tool_calls] == [
        ("call_2", "applyDiscountCode", {"order_number": 1043, "body": {"code": "WELCOME10"}})
    ]


async def test_the_last_intent_ends_with_a_plain_reply(backend: OfflineBackend) -> None:
    messages = [
        user("check 1042; then track 1043"),
        called("call_1", "getOrder", {"order_number": 1042}),
        result("call_1", json.dumps(ORDER_1042)),
        called("call_2", "getOrderTracking", {"order_number": 1043}),
        result("call_2", json.dumps(TRACKING_1043)),
    ]
    completion = await backend.complete(messages, tools=TOOLS)
    assert completion.tool_calls == ()
    assert "Order 1043 is in transit" in completion.text


# -- summarize_result, ask_for, parse_tool_output ----------------------------------------------


@pytest.mark.parametrize(
    ("operation", "result", "status", "arguments", "expected"),
    [
        ("getOrder", ORDER_1042, None, {}, "Order 1042 is paid. Total: 59.90 EUR."),
        (
            "cancelOrder",
            {**ORDER_1042, "status": "cancelled"},
            200,
            {"order_number": 1042},
            "Order 1042 is now cancelled.",
        ),
        (
            "applyDiscountCode",
            {
                **ORDER_1042,
                "discount_code": "WELCOME10",
                "discount_amount": "5.99",
                "total": "53.91",
            },
            200,
            {"order_number": 1042, "body": {"code": "WELCOME10"}},
            "Discount code WELCOME10 is applied (saving 5.99 EUR). Total: 53.91 EUR.",
        ),
        (
            "getOrderTracking",
            {"order_number": 1042, "order_status": "paid", "shipped": False, "carrier": None},
            200,
            {},
            "Order 1042 hasn't shipped yet (it is paid).",
        ),
        (
            "getDiscountCode",
            {"code": "WELCOME10", "kind": "percent", "value": "10.00", "valid": True},
            200,
            {},
            "Code WELCOME10 is valid: 10% off.",
        ),
        (
            "getDiscountCode",
            {
                "code": "SPRING5",
                "kind": "percent",
                "value": "5",
                "valid": False,
                "invalid_reason": "expired",
            },
            200,
            {},
            "Code SPRING5 can't be used right now: it is expired.",
        ),
        (
            "createRefund",
            {
                "id": 7,
                "order_number": 1044,
                "amount": "20.00",
                "currency": "EUR",
                "status": "pending",
            },
            201,
            {},
            "Refund 7 is pending. Amount: 20.00 EUR. It is for order 1044.",
        ),
        (
            "listOrders",
            [ORDER_1042, {**ORDER_1042, "number": 1043, "status": "shipped"}],
            200,
            {},
            "I found 2 orders: order 1042 (paid, 59.90 EUR); order 1043 (shipped, 59.90 EUR).",
        ),
        (
            "listOrders",
            [{"number": n, "status": "paid"} for n in range(1, 6)],
            200,
            {},
            "order 3 (paid), and 2 more.",
        ),
        ("listRefunds", [], 200, {}, "I didn't find any refunds."),
        (
            "getOrder",
            {"detail": "Order 9999 not found.", "code": "order_not_found"},
            404,
            {},
            "I couldn't find order 9999.",
        ),
        (
            "getOrder",
            {"detail": "gone"},
            404,
            {"order_number": 9999},
            "I couldn't find order 9999.",
        ),
        (
            "cancelOrder",
            {"detail": "Order 1043 has already shipped and can no longer be cancelled."},
            409,
            {},
            "Order 1043 has already shipped and can no longer be cancelled.",
        ),
        (
            "applyDiscountCode",
            {"detail": "Discount code SPRING5 has expired.", "code": "invalid_code"},
            422,
            {},
            "That didn't go through: Discount code SPRING5 has expired.",
        ),
        ("getOrder", {"detail": "bad key"}, 401, {}, "pass this on to a member of our support"),
        ("getOrder", "Service Unavailable", 503, {}, "try again in a moment"),
        ("getOrder", {"detail": "Order 9999 not found."}, None, {}, "Order 9999 not found."),
        ("getWidget", {"name": "Widget", "colour": "red"}, 200, {}, "colour: red"),
        ("deleteWidget", None, 204, {}, "Done."),
        ("getWidget", None, 200, {}, "I didn't find anything."),
    ],
)
def test_summarize_result(
    operation: str, result: Any, status: int | None, arguments: dict[str, Any], expected: str
) -> None:
    assert expected in summarize_result(operation, result, status_code=status, arguments=arguments)


def test_a_record_that_refers_to_the_operations_noun_is_not_named_by_it() -> None:
    applied = {**ORDER_1042, "discount_code": "WELCOME10", "discount_amount": "5.99"}
    text = summarize_result("applyDiscountCode", applied, status_code=200)
    assert text.startswith("Done. #1042 is paid.")
    assert "Discount code 1042" not in text


def test_summarize_result_shortens_long_values() -> None:
    text = summarize_result("getNote", {"title": "x" * 5000, "body": "y"})
    assert len(text) < 400


@pytest.mark.parametrize(
    ("missing", "operation", "question"),
    [
        (["order_number"], "cancelOrder", "Which order number is it about?"),
        (["email"], "listOrders", "What email address did you use for your orders?"),
        (["body.code"], "applyDiscountCode", "Which discount code would you like to use?"),
        (["body.amount"], "createRefund", "How much would you like refunded?"),
        (
            ["body.amount", "body.reason"],
            "createRefund",
            "To create the refund I need the amount and the reason. Could you give me those?",
        ),
        (["quantity"], "addCartItem", "Could you tell me the quantity?"),
        ([], "getOrder", "Could you tell me a bit more?"),
    ],
)
def test_ask_for(missing: list[str], operation: str, question: str) -> None:
    assert ask_for(missing, operation) == question


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"a": 1}', ({"a": 1}, None)),
        ('{"status_code": 404, "data": {"detail": "x"}}', ({"detail": "x"}, 404)),
        ('<tool_output status="409">{"detail": "y"}</tool_output>', ({"detail": "y"}, 409)),
        (
            '<tool_output operation="getOrder" status="none" ok="false">\n{"error": "z"}\n'
            "</tool_output>",
            ({"error": "z"}, None),
        ),
        # An order's own "status" is data, not a wrapper.
        ('{"status": "paid", "number": 1}', ({"status": "paid", "number": 1}, None)),
        ("not json", ("not json", None)),
        (None, (None, None)),
    ],
)
def test_parse_tool_output(content: str | None, expected: tuple[Any, int | None]) -> None:
    assert parse_tool_output(content) == expected


def test_greeting_and_help_list_what_the_tools_do() -> None:
    descriptions = [(tool.name, tool.description) for tool in TOOLS]
    assert "track an order's shipment" in greeting(descriptions)
    assert "refund money on an order" in help_text(descriptions)
    assert greeting() == "Hi! How can I help you today?"


# -- the Backend contract ----------------------------------------------------------------------


async def test_completion_metadata(backend: OfflineBackend) -> None:
    completion = await backend.complete([user("where is my order 1042?")], tools=TOOLS)
    assert completion.backend == "offline"
    assert completion.model == DEFAULT_MODEL == "offline-1"
    assert completion.cost == Decimal(0)
    assert completion.attempts == 1
    assert completion.latency_ms >= 0
    # Words stand in for tokens: 5 words in, the call's 2 argument words out.
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (5, 2)
    assert completion.tool_calls[0].id == "call_1"


async def test_text_usage_counts_words(backend: OfflineBackend) -> None:
    completion = await backend.complete([user("cancel my order")], tools=TOOLS)
    assert completion.text == "Which order number is it about?"
    assert completion.usage.completion_tokens == 6
    assert completion.usage.prompt_tokens == 3


async def test_answers_are_deterministic(backend: OfflineBackend) -> None:
    messages = [user("I want a refund of 20 EUR for order 1044 because it arrived broken")]
    first = await backend.complete(messages, tools=TOOLS)
    second = await backend.complete(messages, tools=TOOLS)
    assert (first.text, first.tool_calls) == (second.text, second.tool_calls)


async def _collect(backend: OfflineBackend, messages: list[ChatMessage]) -> tuple[str, Completion]:
    deltas, done = [], None
    async for event in backend.stream(messages, tools=TOOLS):
        if isinstance(event, TokenDelta):
            assert done is None, "no delta may follow Done"
            deltas.append(event.text)
        else:
            assert isinstance(event, Done)
            done = event.completion
    assert done is not None
    return "".join(deltas), done


@pytest.mark.parametrize(
    "messages",
    [
        [user("hello")],
        [user("cancel my order")],
        _after("getOrderTracking", {"order_number": 1043}, json.dumps(TRACKING_1043)),
    ],
)
async def test_stream_yields_the_same_text_word_by_word(
    backend: OfflineBackend, messages: list[ChatMessage]
) -> None:
    streamed, done = await _collect(backend, messages)
    completed = await backend.complete(messages, tools=TOOLS)
    assert streamed == completed.text == done.text
    assert done.tool_calls == ()


async def test_stream_of_a_tool_call_is_just_done(backend: OfflineBackend) -> None:
    events = [event async for event in backend.stream([user("cancel order 1042")], tools=TOOLS)]
    assert len(events) == 1
    assert isinstance(events[0], Done)
    assert [c.name for c in events[0].completion.tool_calls] == ["cancelOrder"]


def test_model_comes_from_config_only_when_it_is_an_offline_model() -> None:
    shared = OfflineBackend(BackendConfig(name="offline", kind="offline", model="gpt-4o-mini"))
    assert shared.model == "offline-1"
    own = offline_factory(BackendConfig(name="local", kind="offline", model="offline-2"))
    assert (own.name, own.kind, own.model) == ("local", "offline", "offline-2")


async def test_register_adds_the_kind_to_a_registry() -> None:
    registry = BackendRegistry([BackendConfig(name="offline", kind="offline")], lazy=True)
    with pytest.raises(LLMConfigurationError):
        registry.backend("offline")
    register(registry)
    completion = await registry.complete([user("cancel order 1042")], tools=TOOLS)
    assert completion.backend == "offline"
    assert completion.tool_calls[0].arguments == {"order_number": 1042}


def test_register_default_makes_every_new_registry_know_the_kind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A private table, so the global default stays untouched for other tests.
    monkeypatch.setattr(registry_module, "_DEFAULT_FACTORIES", {})
    register_default()
    registry = BackendRegistry([BackendConfig(name="offline", kind="offline")])
    assert isinstance(registry.backend("offline"), OfflineBackend)
