"""The ``openai`` backend over real HTTP against the local OpenAI-compatible test server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import pytest

from conversations.llm import (
    BackendConfig,
    ChatMessage,
    Done,
    ErrorKind,
    LLMError,
    TokenDelta,
    ToolCall,
    ToolSpec,
)
from conversations.llm.openai_backend import OpenAIBackend
from tests.support.openai_server import (
    OpenAITestServer,
    Reply,
    error_reply,
    raw_reply,
    stream_reply,
    text_reply,
    tool_call,
    tool_calls_reply,
)

LOOKUP = ToolSpec(
    name="lookup_order",
    description="Look up an order by id.",
    parameters={
        "type": "object",
        "properties": {"order_id": {"type": "string"}},
        "required": ["order_id"],
    },
)


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer() as running:
        yield running


@pytest.fixture
async def backend(server: OpenAITestServer) -> AsyncIterator[OpenAIBackend]:
    instance = OpenAIBackend(
        BackendConfig(name="main", kind="openai", model="gpt-4o-mini", base_url=server.url)
    )
    yield instance
    await instance.aclose()


async def test_completion_has_usage_latency_and_cost(
    server: OpenAITestServer, backend: OpenAIBackend
) -> None:
    server.enqueue(text_reply("Your order shipped.", prompt_tokens=1000, completion_tokens=500))

    completion = await backend.complete(
        [ChatMessage("system", "Be brief."), ChatMessage("user", "Where is my order?")],
        temperature=0.2,
    )

    assert completion.text == "Your order shipped."
    assert completion.tool_calls == ()
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (1000, 500)
    assert completion.usage.total_tokens == 1500
    assert completion.cost == Decimal("0.00045")  # 1k x 0.00015 + 0.5k x 0.0006
    assert completion.latency_ms > 0
    assert (completion.model, completion.backend, completion.finish_reason) == (
        "gpt-4o-mini",
        "main",
        "stop",
    )
    (request,) = server.chat_requests
    assert request.json["model"] == "gpt-4o-mini"
    assert request.json["temperature"] == 0.2
    assert request.json["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Where is my order?"},
    ]
    assert "tools" not in request.json
    # An empty API key is replaced: local servers ignore it, the client insists on one.
    assert request.headers["authorization"] == "Bearer not-needed"


async def test_configured_price_overrides_the_table(server: OpenAITestServer) -> None:
    config = BackendConfig(
        name="priced",
        kind="openai",
        model="llama3",
        base_url=server.url,
        price_per_1k_prompt=Decimal("0.01"),
        price_per_1k_completion=Decimal("0.02"),
    )
    backend = OpenAIBackend(config)
    server.enqueue(text_reply("hi", prompt_tokens=2000, completion_tokens=1000))
    completion = await backend.complete([ChatMessage("user", "hi")])
    await backend.aclose()
    assert completion.cost == Decimal("0.04")


async def test_tool_calling_round_trip(server: OpenAITestServer, backend: OpenAIBackend) -> None:
    server.enqueue(
        tool_calls_reply(tool_call("lookup_order", {"order_id": "A-1001"}, id="call_abc")),
        text_reply("Order A-1001 shipped yesterday."),
    )
    history = [ChatMessage("user", "Where is order A-1001?")]

    first = await backend.complete(history, tools=[LOOKUP])
    assert first.finish_reason == "tool_calls"
    assert first.tool_calls == (
        ToolCall("call_abc", "lookup_order", {"order_id": "A-1001"}, '{"order_id": "A-1001"}'),
    )
    history += [
        first.as_message(),
        ChatMessage("tool", json.dumps({"status": "shipped"}), tool_call_id="call_abc"),
    ]
    final = await backend.complete(history, tools=[LOOKUP])

    assert final.text == "Order A-1001 shipped yesterday."
    first_request, second_request = (request.json for request in server.chat_requests)
    assert first_request["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "lookup_order",
                "description": "Look up an order by id.",
                "parameters": LOOKUP.parameters,
            },
        }
    ]
    assert second_request["messages"][1:] == [
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_abc",
                    "type": "function",
                    "function": {"name": "lookup_order", "arguments": '{"order_id": "A-1001"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_abc", "content": '{"status": "shipped"}'},
    ]


async def test_invalid_tool_arguments_come_back_with_the_error_not_a_failure(
    server: OpenAITestServer, backend: OpenAIBackend
) -> None:
    """A model's slip (issue 15 item 6): the call carries the error for the repair round; the
    answer is not thrown away and the backend did not fail."""
    server.enqueue(tool_calls_reply(tool_call("lookup_order", '{"order_id": "A-1', id="c1")))
    completion = await backend.complete([ChatMessage("user", "order A-1")], tools=[LOOKUP])
    (call,) = completion.tool_calls
    assert call.arguments == {} and call.raw_arguments == '{"order_id": "A-1'
    assert "lookup_order" in call.error and "not valid JSON" in call.error


async def test_stream_yields_text_deltas_in_order_then_usage(
    server: OpenAITestServer, backend: OpenAIBackend
) -> None:
    server.enqueue(stream_reply(["Your ", "order ", "has ", "shipped."], completion_tokens=4))

    events = [event async for event in backend.stream([ChatMessage("user", "status?")])]

    deltas = [event.text for event in events if isinstance(event, TokenDelta)]
    assert deltas == ["Your ", "order ", "has ", "shipped."]
    assert isinstance(events[-1], Done)
    assert sum(isinstance(event, Done) for event in events) == 1
    completion = events[-1].completion
    assert completion.text == "Your order has shipped."
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (10, 4)
    assert completion.cost == Decimal("0.0000039")
    (request,) = server.chat_requests
    assert request.json["stream"] is True
    assert request.json["stream_options"] == {"include_usage": True}


async def test_stream_assembles_tool_call_fragments(
    server: OpenAITestServer, backend: OpenAIBackend
) -> None:
    arguments = {"order_id": "A-1001", "email": "ana@example.com", "reason": "late"}
    server.enqueue(
        stream_reply(
            tool_calls=[
                tool_call("lookup_order", arguments, id="call_1"),
                tool_call("escalate_to_human", {}, id="call_2"),
            ]
        )
    )

    events = [event async for event in backend.stream([ChatMessage("user", "x")], tools=[LOOKUP])]

    assert not [event for event in events if isinstance(event, TokenDelta)]
    done = events[-1]
    assert isinstance(done, Done)
    calls = done.completion.tool_calls
    assert [(call.id, call.name, call.arguments) for call in calls] == [
        ("call_1", "lookup_order", arguments),
        ("call_2", "escalate_to_human", {}),
    ]
    assert done.completion.finish_reason == "tool_calls"


async def test_timeout_maps_to_transient_timeout(server: OpenAITestServer) -> None:
    backend = OpenAIBackend(
        BackendConfig(name="slow", kind="openai", base_url=server.url, timeout=0.2)
    )
    server.enqueue(text_reply("too late", delay=2.0))
    with pytest.raises(LLMError) as caught:
        await backend.complete([ChatMessage("user", "hi")])
    await backend.aclose()
    assert (caught.value.kind, caught.value.transient, caught.value.backend) == (
        ErrorKind.TIMEOUT,
        True,
        "slow",
    )


async def test_total_deadline_catches_an_answer_that_trickles_in(
    server: OpenAITestServer,
) -> None:
    # Every piece arrives well within the client's per-read timeout; only the asyncio guard
    # around the whole attempt sees that the answer takes three times the budget.
    backend = OpenAIBackend(
        BackendConfig(name="drip", kind="openai", base_url=server.url, timeout=0.3)
    )
    server.enqueue(text_reply("slowly " * 20, trickle=0.1))
    with pytest.raises(LLMError) as caught:
        await backend.complete([ChatMessage("user", "hi")])
    await backend.aclose()
    assert caught.value.kind == ErrorKind.TIMEOUT


@pytest.mark.parametrize(
    ("reply", "kind", "transient"),
    [
        (error_reply(429, retry_after=4), ErrorKind.RATE_LIMITED, True),
        (error_reply(500), ErrorKind.SERVER_ERROR, True),
        (error_reply(503), ErrorKind.SERVER_ERROR, True),
        (error_reply(400), ErrorKind.BAD_REQUEST, False),
        (error_reply(401), ErrorKind.AUTH, False),
        (error_reply(403), ErrorKind.AUTH, False),
        (error_reply(404), ErrorKind.BAD_REQUEST, False),
        (error_reply(422), ErrorKind.BAD_REQUEST, False),
        (raw_reply(b"{not json"), ErrorKind.INVALID_RESPONSE, False),
        (raw_reply(b'{"choices": []}'), ErrorKind.INVALID_RESPONSE, False),
    ],
    ids=["429", "500", "503", "400", "401", "403", "404", "422", "not-json", "no-choices"],
)
async def test_failures_map_to_error_kinds(
    server: OpenAITestServer,
    backend: OpenAIBackend,
    reply: Reply,
    kind: ErrorKind,
    transient: bool,
) -> None:
    server.enqueue(reply)
    with pytest.raises(LLMError) as caught:
        await backend.complete([ChatMessage("user", "hi")])
    assert (caught.value.kind, caught.value.transient) == (kind, transient)
    if kind == ErrorKind.RATE_LIMITED:
        assert caught.value.retry_after == 4.0
    # One attempt per backend call: the client's own retries are off.
    assert len(server.chat_requests) == 1


async def test_stream_cut_before_finishing_is_an_error(
    server: OpenAITestServer, backend: OpenAIBackend
) -> None:
    server.enqueue(stream_reply(["a", "b", "c"], fail_after=2))
    seen: list[str] = []
    with pytest.raises(LLMError) as caught:
        async for event in backend.stream([ChatMessage("user", "hi")]):
            if isinstance(event, TokenDelta):
                seen.append(event.text)
    assert seen == ["a", "b"]
    assert caught.value.kind == ErrorKind.CONNECTION
