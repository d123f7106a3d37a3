"""Every log line written while a socket or a turn is handled carries its ids (issue 18 item 4;
SPEC §10): ``connection_id`` per WebSocket and ``turn_id`` per turn, next to the conversation,
the backend and the model, through the real ASGI application and logging configuration."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations.models import Conversation, Turn
from conversations.turns.engine import wait_idle
from tests.conversations.chat import connect, frames_until, turn_ended, verify_customer
from tests.support.openai_server import OpenAITestServer, text_reply, tool_call, tool_calls_reply

pytestmark = pytest.mark.django_db(transaction=True)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, dict):  # structlog's event dict, context vars merged
            self.lines.append({**record.msg, "_logger": record.name})


@pytest.fixture
def lines() -> Iterator[list[dict[str, Any]]]:
    handler = _Collect()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler.lines
    root.removeHandler(handler)
    root.setLevel(level)


async def _chat(conversation: Conversation, visitor: str, text: str) -> list[dict[str, Any]]:
    ws, ready = await connect(conversation.pk, visitor)
    assert isinstance(ready, dict)
    await ws.send_json_to({"type": "message", "client_id": "c1", "content": text})
    frames = await frames_until(ws, turn_ended)
    await ws.send_json_to({"type": "no_such_frame"})  # a warning line, outside any turn
    await ws.receive_json_from(timeout=5)
    await ws.disconnect()
    await wait_idle()
    return frames


async def test_socket_and_turn_ids_on_every_line(
    openai_backend: Any,
    model_server: OpenAITestServer,
    conversation: Conversation,
    lines: list[dict[str, Any]],
) -> None:
    await sync_to_async(verify_customer)(conversation.pk)
    model_server.enqueue(
        tool_calls_reply(tool_call("getOrder", {"order_number": 1042})),
        text_reply("Order 1042 is paid."),
    )
    await _chat(conversation, "visitor-a", "where is my order 1042?")
    turn = await Turn.objects.aget()
    # Lines of the socket's task and of what it started (conversation_start ran before it).
    ours = [
        line
        for line in lines
        if line.get("conversation_id") == str(conversation.pk) and "ws_path" in line
    ]
    in_turn = [line for line in ours if "turn_id" in line]
    assert len(in_turn) >= 2, ours  # the model calls and the tool call at least
    connection_ids = {line.get("connection_id") for line in ours}
    assert len(connection_ids) == 1 and None not in connection_ids
    for line in in_turn:
        assert line["turn_id"] == turn.pk
        assert line["backend"] == "openai", line
        assert line["model"] == "test-model", line
    # Lines of the model and tool layers are all inside the turn.
    layers = ("conversations.llm", "conversations.tools")
    layered = [line for line in ours if line["_logger"].startswith(layers)]
    assert layered and all("turn_id" in line for line in layered)
    # After the turn, the socket's lines keep the connection id and lose the turn's.
    rejected = [line for line in ours if line.get("event") == "chat_frame_rejected"]
    assert rejected and all("turn_id" not in line for line in rejected), ours


async def test_two_sockets_get_different_connection_ids(
    demo: Any, lines: list[dict[str, Any]]
) -> None:
    from conversations.services import conversation_start

    first = await sync_to_async(conversation_start)(visitor_id="visitor-a")
    second = await sync_to_async(conversation_start)(visitor_id="visitor-b")
    await _chat(first, "visitor-a", "hello")
    await _chat(second, "visitor-b", "hello")
    ids = {
        str(c.pk): {
            line.get("connection_id")
            for line in lines
            if line.get("conversation_id") == str(c.pk) and "ws_path" in line
        }
        for c in (first, second)
    }
    assert all(len(v) == 1 and None not in v for v in ids.values()), ids
    assert ids[str(first.pk)] != ids[str(second.pk)]
