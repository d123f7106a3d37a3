"""A failed call is never "Done." and leaks nothing (issue 13 items 5 and 6): the demo's spec
pointed at a local upstream that refuses, answers 500, times out or sends invalid JSON."""

from __future__ import annotations

import json
import re
import socket
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations import tools
from conversations.models import Conversation, ToolCall
from conversations.turns.engine import wait_idle
from escalations.models import Escalation
from openapi_import.models import ApiSpec
from tests.conversations.chat import connect, frames_until, turn_ended, verify_customer
from tests.support.http_server import Route, local_server

pytestmark = pytest.mark.django_db(transaction=True)

LEAK = re.compile(
    r"127\.0\.0\.1|localhost|:\d{4,5}\b|Traceback|Errno|connect call failed|Error\b|"
    r"Exception|fetch failed|<html",
    re.IGNORECASE,
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    quick = tools.RetrySettings(base=0.0, cap=0.0)
    monkeypatch.setattr(tools, "RetrySettings", lambda: quick)


async def _ask(conversation: Conversation, text: str, client_id: str) -> list[dict[str, Any]]:
    await sync_to_async(verify_customer)(conversation.pk, email="ana@example.com")
    ws, _ = await connect(conversation.pk, "visitor-a")
    await ws.send_json_to({"type": "message", "client_id": client_id, "content": text})
    frames = await frames_until(ws, turn_ended)
    await ws.disconnect()
    await wait_idle()
    return frames


def _texts(frames: list[dict[str, Any]]) -> str:
    return json.dumps([{k: v for k, v in f.items() if k not in ("created_at",)} for f in frames])


@pytest.mark.parametrize(
    "upstream", ["refused", "500", "timeout", "invalid_json"], ids=lambda u: str(u)
)
async def test_failed_lookup_apologises_offers_a_human_and_leaks_nothing(
    demo: Any, conversation: Conversation, settings: Any, upstream: str
) -> None:
    routes = {
        "500": Route(500, b'Traceback (most recent call last): File "/srv/app.py", line 3'),
        "timeout": Route(200, b"{}", {"Content-Type": "application/json"}, delay=1.0),
        "invalid_json": Route(200, b"<html>oops", {"Content-Type": "application/json"}),
    }
    settings.TOOL_TIMEOUT_SECONDS = 0.3
    with local_server({"*": routes.get(upstream, Route())}) as server:
        netloc = server.netloc if upstream != "refused" else f"127.0.0.1:{_free_port()}"
        settings.UPSTREAM_ALLOWED_HOSTS = [netloc]
        await ApiSpec.objects.filter(pk=demo.spec.pk).aupdate(
            base_url=f"http://{netloc}/demo-shop/api"
        )
        frames = await _ask(conversation, "where is my order 1042?", "c1")
    result = next(f for f in frames if f["type"] == "tool_result")
    assert result["ok"] is False
    assert result["summary"].startswith("Couldn't look up the order")
    reply = [f for f in frames if f["type"] == "message" and f["role"] == "assistant"][-1]
    assert reply["content"].startswith("Sorry, I couldn't look up order 1042")
    # unknown (an unreadable answer) escalates at once (SPEC §6); the others offer a human.
    offer = "support team to help" if upstream == "invalid_json" else "talk to a human"
    assert offer in reply["content"]
    assert "Done" not in _texts(frames) and "didn't find" not in _texts(frames)
    assert not LEAK.search(_texts(frames)), _texts(frames)
    call = await ToolCall.objects.aget()
    assert call.status == "failed" and call.error_message  # the detail is on the record


async def test_repeated_failures_escalate_with_tool_failure(
    demo: Any, conversation: Conversation, settings: Any
) -> None:
    netloc = f"127.0.0.1:{_free_port()}"
    settings.UPSTREAM_ALLOWED_HOSTS = [netloc]
    settings.ESCALATE_AFTER_TOOL_FAILURES = 2
    await ApiSpec.objects.filter(pk=demo.spec.pk).aupdate(base_url=f"http://{netloc}/x")
    await _ask(conversation, "where is my order 1042?", "c1")
    assert not await Escalation.objects.aexists()
    frames = await _ask(conversation, "track order 1043", "c2")
    escalation = await Escalation.objects.aget()
    assert escalation.trigger == "tool_failure"
    assert "connect" in escalation.reason.lower() or "failed" in escalation.reason  # staff detail
    assert not LEAK.search(_texts(frames)), _texts(frames)
    assert any(f["type"] == "escalated" for f in frames)
