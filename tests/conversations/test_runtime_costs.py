"""What keeps a chat turn cheap (docs/performance.md) without changing what it does: streamed
text in few frames, a turn's frames in few channel-layer messages, the enabled agents kept per
process until something changes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any, cast

import pytest
from channels.db import database_sync_to_async
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analytics.models import Event
from config import versions
from conversations import realtime
from conversations.agents import agents_load, template_text
from conversations.llm.registry import BackendRegistry
from conversations.llm.types import Completion, Done, TokenDelta, Usage
from conversations.model_backends import AgentRoute
from conversations.models import Agent, Conversation, Turn
from conversations.turns import engine, setup, steps
from openapi_import.models import Operation
from openapi_import.services import operations_bulk_update
from tests.conversations.chat import connect, frames_until, turn_ended
from tests.openapi_import.factories import OperationFactory

pytestmark = pytest.mark.django_db(transaction=True)


class Scripted:
    """A registry whose stream yields the given words, with a pause before each."""

    def __init__(self, words: list[str], pause: float = 0.0) -> None:
        self.words = words
        self.pause = pause

    async def stream(self, messages: Any, **kwargs: Any) -> AsyncIterator[Any]:
        for word in self.words:
            if self.pause:
                await asyncio.sleep(self.pause)
            yield TokenDelta(word)
        yield Done(
            Completion(
                text="".join(self.words),
                tool_calls=(),
                usage=Usage(1, len(self.words)),
                model="scripted",
                backend="scripted",
                latency_ms=1.0,
                cost=Decimal(0),
                finish_reason="stop",
            )
        )


@pytest.fixture
def published(monkeypatch: Any) -> list[list[dict[str, Any]]]:
    sent: list[list[dict[str, Any]]] = []
    original = realtime.send_frames

    async def record(conversation_id: Any, frames: list[dict[str, Any]]) -> None:
        sent.append(list(frames))
        await original(conversation_id, frames)

    monkeypatch.setattr(realtime, "send_frames", record)
    return sent


async def stream(conversation: Conversation, registry: Scripted) -> None:
    turn = Turn(pk=1, conversation_id=conversation.pk)
    box = realtime.Outbox()
    token = engine._outbox.set(box)
    try:
        completion = await engine._stream_completion(
            str(conversation.pk), turn, cast(BackendRegistry, registry), [], [], AgentRoute()
        )
        await box.flush()
    finally:
        engine._outbox.reset(token)
    assert completion.text == "".join(registry.words)


async def test_a_fast_stream_goes_out_in_one_frame(
    conversation: Conversation, published: list[Any]
) -> None:
    words = [f"word{n} " for n in range(40)]
    await stream(conversation, Scripted(words))
    tokens = [f for batch in published for f in batch if f["type"] == "token"]
    assert len(tokens) == 1
    assert tokens[0]["delta"] == "".join(words)


async def test_a_slow_stream_goes_out_as_it_comes(
    conversation: Conversation, published: list[Any], monkeypatch: Any
) -> None:
    monkeypatch.setattr(engine, "TOKEN_FLUSH_SECONDS", 0.01)
    words = ["one ", "two ", "three ", "four "]
    await stream(conversation, Scripted(words, pause=0.03))
    tokens = [f["delta"] for batch in published for f in batch if f["type"] == "token"]
    assert len(tokens) >= 3  # each pause is longer than the window
    assert "".join(tokens) == "".join(words)


async def test_a_turn_is_a_few_publishes_with_every_frame_in_order(
    conversation: Conversation, published: list[Any]
) -> None:
    await database_sync_to_async(agents_load)(text=template_text("ecommerce"))
    ws, _ = await connect(conversation.pk, "visitor-a")
    await ws.send_json_to({"type": "message", "client_id": "c1", "content": "hello there"})
    frames = await frames_until(ws, turn_ended)
    await ws.disconnect()
    kinds = [(f["type"], f.get("role")) for f in frames]
    assert kinds[0] == ("message", "user")
    assert kinds[1] == ("turn_start", None)
    assert ("message", "assistant") in kinds and kinds[-1] == ("turn_end", None)
    # The reply travels with the turn's end; text streamed before it, in at most a few frames.
    assert published[-1][-2:] == [frames[-2], frames[-1]]
    assert len(published) <= 4
    # Every step still recorded: received, agent chosen, model called, sent, turn completed.
    types = await database_sync_to_async(
        lambda: sorted(
            Event.objects.filter(conversation_id=conversation.pk).values_list("type", flat=True)
        )
    )()
    for expected in (
        "message_received",
        "agent_selected",
        "model_called",
        "message_sent",
        "turn_completed",
    ):
        assert expected in types
    turn = await Turn.objects.aget(conversation=conversation)
    assert turn.model_calls == 1 and turn.completion_tokens > 0 and turn.status == "completed"


def _agents_queries() -> int:
    """Queries beyond reading the stamp (one primary-key read when it lives in the database)."""
    stamp_queries = 0 if django_settings.REDIS_URL else 1
    with CaptureQueriesContext(connection) as queries:
        setup.agents_loaded()
    return len(queries) - stamp_queries


def test_enabled_agents_are_kept_until_something_changes(settings: Any) -> None:
    settings.AGENT_CACHE_SECONDS = 60
    agents_load(text=template_text("ecommerce"))
    assert _agents_queries() > 0
    assert _agents_queries() == 0  # kept: nothing read but the stamp

    agent = Agent.objects.first()
    assert agent is not None
    agent.description = "Something else entirely"
    agent.save()
    assert _agents_queries() > 0  # a saved agent reaches every process
    assert [s.agent.description for s in setup.agents_loaded() if s.agent.pk == agent.pk] == [
        "Something else entirely"
    ]
    assert _agents_queries() == 0

    operation = cast(Operation, OperationFactory())
    agent.operations.add(operation)  # m2m change
    assert _agents_queries() > 0
    assert _agents_queries() == 0
    user = User.objects.create_user("reviewer")
    operations_bulk_update(
        operations=Operation.objects.filter(pk=operation.pk), action="disable", user=user
    )  # a queryset update: no model signal, an explicit bump
    assert _agents_queries() > 0


def test_the_cache_has_a_time_limit(settings: Any) -> None:
    settings.AGENT_CACHE_SECONDS = 0
    agents_load(text=template_text("ecommerce"))
    setup.agents_loaded()
    assert versions.current(versions.AGENT_TOOLS) is not None
    assert _agents_queries() > 0
    assert _agents_queries() > 0


async def test_routing_that_fails_in_the_claiming_trip_still_fails_the_turn_visibly(
    conversation: Conversation, monkeypatch: Any
) -> None:
    """The first intent is routed in the trip that claims the turn; if routing breaks there,
    the turn must still end as a failure the customer is told about, not vanish."""
    await database_sync_to_async(agents_load)(text=template_text("ecommerce"))

    def broken(*args: Any) -> Any:
        raise RuntimeError("routing broke")

    monkeypatch.setattr(steps, "intent_route", broken)
    ws, _ = await connect(conversation.pk, "visitor-a")
    await ws.send_json_to({"type": "message", "client_id": "c1", "content": "hello there"})
    frames = await frames_until(ws, turn_ended)
    await ws.disconnect()
    assert frames[-1]["status"] == "failed"
    said = [f["content"] for f in frames if f["type"] == "message" and f["role"] == "system"]
    assert said and "went wrong" in said[0]
    assert await Turn.objects.filter(conversation=conversation).acount() == 1
