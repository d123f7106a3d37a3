"""The ``recorded`` backend: cassettes replayed through the real ``openai`` client, misses, and
recording a multi-turn tool-calling exchange from the local test server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from conversations.llm import (
    BackendConfig,
    BackendRegistry,
    ChatMessage,
    Completion,
    Done,
    LLMConfigurationError,
    TokenDelta,
    ToolCall,
    ToolSpec,
)
from conversations.llm.recorded import (
    Cassette,
    CassetteMissError,
    Interaction,
    RecordedBackend,
    completion_json,
    request_key,
)
from tests.support.openai_server import (
    OpenAITestServer,
    text_reply,
    tool_call,
    tool_calls_reply,
)

LOOKUP = ToolSpec(
    name="lookup_order",
    description="Look up an order by id.",
    parameters={"type": "object", "properties": {"order_id": {"type": "string"}}},
)
QUESTION = ChatMessage("user", "Where is order A-1001?")
TOOL_RESULT = '{"status": "shipped", "carrier": "DHL"}'


async def two_turns(registry: BackendRegistry, *, stream_second: bool = False) -> list[Completion]:
    """Tool call, tool result, final answer: the exchange an agent turn makes."""
    history = [ChatMessage("system", "You are a support agent."), QUESTION]
    first = await registry.complete(history, tools=[LOOKUP])
    (call,) = first.tool_calls
    history += [first.as_message(), ChatMessage("tool", TOOL_RESULT, tool_call_id=call.id)]
    if not stream_second:
        return [first, await registry.complete(history, tools=[LOOKUP])]
    events = [event async for event in registry.stream(history, tools=[LOOKUP])]
    assert isinstance(events[-1], Done)
    text = "".join(event.text for event in events if isinstance(event, TokenDelta))
    assert text == events[-1].completion.text
    return [first, events[-1].completion]


def hand_written_cassette() -> Cassette:
    system = ChatMessage("system", "You are a support agent.")
    call = ToolCall("call_1", "lookup_order", {"order_id": "A-1001"}, '{"order_id": "A-1001"}')
    return Cassette(
        [
            Interaction.for_messages(
                [system, QUESTION],
                completion_json(
                    tool_calls=[("call_1", "lookup_order", '{"order_id": "A-1001"}')],
                    prompt_tokens=40,
                    completion_tokens=12,
                    model="gpt-4o-mini",
                ),
                tools=[LOOKUP],
            ),
            Interaction.for_messages(
                [
                    system,
                    QUESTION,
                    ChatMessage("assistant", tool_calls=(call,)),
                    ChatMessage("tool", TOOL_RESULT, tool_call_id="call_1"),
                ],
                completion_json(
                    "It shipped with DHL.", prompt_tokens=60, completion_tokens=6, model="gpt-4o"
                ),
                tools=[LOOKUP],
            ),
        ]
    )


@pytest.fixture
async def replay() -> AsyncIterator[BackendRegistry]:
    config = BackendConfig(
        name="recorded", kind="recorded", options={"cassette": hand_written_cassette()}
    )
    registry = BackendRegistry([config])
    yield registry
    await registry.aclose()


async def test_replay_runs_a_multi_turn_tool_flow_through_the_openai_client(
    replay: BackendRegistry,
) -> None:
    backend = replay.backend("recorded")
    assert isinstance(backend, RecordedBackend)

    first, second = await two_turns(replay)

    assert first.tool_calls == (
        ToolCall("call_1", "lookup_order", {"order_id": "A-1001"}, '{"order_id": "A-1001"}'),
    )
    assert (first.usage.prompt_tokens, first.usage.completion_tokens) == (40, 12)
    assert second.text == "It shipped with DHL."
    assert (second.model, second.backend, second.attempts) == ("gpt-4o", "recorded", 1)
    assert second.cost > 0  # priced from the recorded model
    # The responses were parsed by the real client over its HTTP stack, not handed over.
    (client,) = backend._clients.values()
    assert isinstance(client, openai.AsyncOpenAI)


async def test_a_recorded_completion_replays_as_a_stream(replay: BackendRegistry) -> None:
    _, second = await two_turns(replay, stream_second=True)
    assert second.text == "It shipped with DHL."
    assert second.usage.completion_tokens == 6


async def test_cassette_miss_names_the_request_and_is_not_absorbed(
    replay: BackendRegistry,
) -> None:
    with pytest.raises(CassetteMissError) as caught:
        await replay.complete([ChatMessage("user", "Cancel order B-7, please")], tools=[LOOKUP])
    message = str(caught.value)
    assert "no recorded interaction matches" in message
    assert "'Cancel order B-7, please'" in message
    assert "tools [lookup_order]" in message
    assert isinstance(caught.value, LLMConfigurationError)


def test_matching_ignores_model_and_stream_flags_but_not_content() -> None:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}], "tools": []}
    same = {**body, "model": "other", "stream": True, "temperature": 0.3}
    assert request_key(body) == request_key(same)
    assert request_key(body) != request_key({"messages": [{"role": "user", "content": "hi!"}]})


def test_missing_cassette_file_is_a_configuration_error(tmp_path: Path) -> None:
    config = BackendConfig(
        name="r", kind="recorded", options={"cassette": str(tmp_path / "nope.json")}
    )
    with pytest.raises(LLMConfigurationError, match="does not exist"):
        BackendRegistry([config])


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer() as running:
        yield running


async def test_record_a_tool_exchange_then_replay_it_with_the_server_stopped(
    server: OpenAITestServer, tmp_path: Path
) -> None:
    cassette_path = tmp_path / "cassettes" / "lookup.json"
    server.enqueue(
        tool_calls_reply(
            tool_call("lookup_order", {"order_id": "A-1001"}, id="call_rec"),
            prompt_tokens=30,
            completion_tokens=9,
        ),
        text_reply("It shipped with DHL.", prompt_tokens=50, completion_tokens=6),
    )
    recorder = BackendRegistry(
        [
            BackendConfig(
                name="rec",
                kind="recorded",
                model="gpt-4o-mini",
                base_url=server.url,
                options={"cassette": str(cassette_path), "record": True},
            )
        ]
    )
    recorded = await two_turns(recorder)
    await recorder.aclose()
    server.stop()

    saved = json.loads(cassette_path.read_text())
    assert len(saved["interactions"]) == 2
    assert all("model" not in item["request"] for item in saved["interactions"])
    second_request = saved["interactions"][1]["request"]["messages"]
    assert second_request[-1] == {
        "role": "tool",
        "tool_call_id": "call_rec",
        "content": TOOL_RESULT,
    }

    player = BackendRegistry(
        [BackendConfig(name="rec", kind="recorded", options={"cassette": str(cassette_path)})]
    )
    replayed = await two_turns(player)
    streamed = await two_turns(player, stream_second=True)
    await player.aclose()

    for run in (replayed, streamed):
        assert [c.tool_calls for c in run] == [c.tool_calls for c in recorded]
        assert [c.text for c in run] == ["", "It shipped with DHL."]
        assert [c.usage for c in run] == [c.usage for c in recorded]
    assert len(server.chat_requests) == 2  # nothing reached the (stopped) server on replay
