"""Replay (SPEC §10): the record step by step, in the admin and the API, masked, paginated, and
never re-executed."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import Client

from conversations.models import Conversation, Message, ToolCall, Turn
from conversations.services import conversation_start, handoff_request, message_append
from conversations.turns.engine import wait_idle
from escalations.models import Escalation
from tests.conversations.chat import cancel_and_approve, connect, verify_customer


def _login(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db(transaction=True)
async def test_a_demo_conversation_replays_every_step_without_running_anything(
    demo: Any, supervisor: User, api: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversation = await sync_to_async(conversation_start)(visitor_id="visitor-a")
    await sync_to_async(verify_customer)(conversation.pk)
    ws, _ = await connect(conversation.pk, "visitor-a")
    await cancel_and_approve(ws)
    await ws.disconnect()
    await wait_idle()
    calls_before = await ToolCall.objects.acount()
    turns_before = await Turn.objects.acount()
    items_before = await Message.objects.acount()

    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> None:
        attempts.append(args)
        raise AssertionError("the replay made a request")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)

    async def refuse_registry(*args: Any, **kwargs: Any) -> None:
        refuse(*args, **kwargs)

    monkeypatch.setattr("conversations.turns.engine.aget_registry", refuse_registry)

    def read() -> tuple[Any, Any]:
        page = _login(supervisor).get(f"/admin/analytics/replay/{conversation.pk}/")
        body = api.get(f"/api/v1/conversations/{conversation.pk}/replay").json()
        return page, body

    page, body = await sync_to_async(read)()
    assert attempts == []
    assert await ToolCall.objects.acount() == calls_before
    assert await Turn.objects.acount() == turns_before
    assert await Message.objects.acount() == items_before
    assert page.status_code == 200 and body["success"] is True
    kinds = [step["kind"] for step in body["data"]["steps"]]
    for kind in (
        "customer_message",
        "agent_selection",
        "tool_call",
        "interrupt",
        "decision",
        "tool_result",
        "reply",
    ):
        assert kind in kinds, (kind, kinds)
    assert kinds.index("interrupt") < kinds.index("decision") < kinds.index("tool_result")
    call = next(s for s in body["data"]["steps"] if s["kind"] == "tool_call")
    assert call["title"] == "cancelOrder" and call["detail"]["arguments"] == {"order_number": 1042}
    result = next(s for s in body["data"]["steps"] if s["kind"] == "tool_result")
    assert result["detail"]["status"] == "succeeded" and result["detail"]["latency_ms"] > 0
    decision = next(s for s in body["data"]["steps"] if s["kind"] == "decision")
    assert decision["detail"]["decision"] == "approved" and decision["detail"]["latency_ms"] >= 0
    assert [s["number"] for s in body["data"]["steps"]] == list(range(1, len(kinds) + 1))
    html = page.content.decode()
    assert "cancelOrder" in html and "<details" in html


@pytest.mark.django_db
def test_credentials_and_pii_are_never_shown(supervisor: User, api: Client) -> None:
    conversation = conversation_start(visitor_id="v")
    message = message_append(
        conversation_id=conversation.pk, role="user", content="I am ana@example.com", client_id="c"
    )
    turn = Turn.objects.create(conversation=conversation, user_message=message)
    call = ToolCall.objects.create(
        conversation=conversation,
        turn=turn,
        operation_name="lookupCustomer",
        arguments={"email": "ana@example.com", "api_key": "sk-live-abcdefghijklmnop"},
        status="succeeded",
        result={"phone": "+44 20 7946 0958", "token": "abc123secret"},
    )
    message_append(
        conversation_id=conversation.pk,
        kind="tool_call",
        role="system",
        turn=turn,
        payload={"frame": {"call_id": call.pk, "operation": "lookupCustomer"}},
    )
    message_append(
        conversation_id=conversation.pk,
        kind="tool_result",
        role="system",
        turn=turn,
        payload={"frame": {"call_id": call.pk, "ok": True}},
    )
    body = api.get(f"/api/v1/conversations/{conversation.pk}/replay").content.decode()
    html = _login(supervisor).get(f"/admin/analytics/replay/{conversation.pk}/").content.decode()
    for text in (body, html):
        assert "ana@example.com" not in text and "a***@example.com" in text
        assert "sk-live-abcdefghijklmnop" not in text and "abc123secret" not in text
        assert "7946" not in text
        assert "[redacted]" in text


@pytest.mark.django_db
def test_replay_pages_hold_twenty_steps(api: Client) -> None:
    conversation = conversation_start(visitor_id="v")
    for index in range(25):
        message_append(
            conversation_id=conversation.pk, role="user", content=f"m{index}", client_id=f"c{index}"
        )
    first = api.get(f"/api/v1/conversations/{conversation.pk}/replay").json()["data"]
    second = api.get(f"/api/v1/conversations/{conversation.pk}/replay", {"page": 2}).json()["data"]
    beyond = api.get(f"/api/v1/conversations/{conversation.pk}/replay", {"page": 9}).json()["data"]
    assert (first["total"], first["pages"], len(first["steps"])) == (25, 2, 20)
    assert [s["text"] for s in second["steps"]] == [f"m{i}" for i in range(20, 25)]
    assert second["steps"][0]["number"] == 21
    assert beyond["page"] == 2  # clamped to the last page


@pytest.mark.django_db
def test_unknown_conversations_and_bad_ids_are_refused(api: Client, supervisor: User) -> None:
    missing = api.get("/api/v1/conversations/00000000-0000-0000-0000-000000000000/replay")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert api.get("/api/v1/conversations/not-a-uuid/replay").status_code in (404, 422)
    admin_missing = _login(supervisor).get(
        "/admin/analytics/replay/00000000-0000-0000-0000-000000000000/"
    )
    assert admin_missing.status_code == 404


@pytest.mark.django_db
def test_the_handoff_packet_links_to_the_replay() -> None:
    conversation = conversation_start(visitor_id="v")
    handoff_request(conversation_id=conversation.pk, trigger="customer_button", reason="help")
    escalation = Escalation.objects.get(conversation=conversation)
    assert escalation.packet["links"]["replay"] == f"/admin/analytics/replay/{conversation.pk}/"
    assert Conversation.objects.get(pk=conversation.pk).state == "escalated"


@pytest.mark.django_db
def test_the_conversation_admin_links_to_its_replay(supervisor: User) -> None:
    conversation = conversation_start(visitor_id="v")
    html = (
        _login(supervisor)
        .get(f"/admin/conversations/conversation/{conversation.pk}/change/")
        .content.decode()
    )
    assert f'href="/admin/analytics/replay/{conversation.pk}/"' in html
