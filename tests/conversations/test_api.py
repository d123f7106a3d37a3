"""The program API for conversations, interrupts and agents (/api/v1, issue 17 items 1–3):
status codes, the envelope, scoping by integration, cursors, the reply with ``wait`` and 202,
approvals bound to the arguments' hash, agent changes reaching every process."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from access.models import ApiKey
from access.services import api_key_issue
from config import versions
from conversations import headless
from conversations.models import Agent, Conversation, Interrupt, Message, StateTransition, Turn
from tests.conversations.conftest import demo  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _roles(transactional_db: None) -> None:
    """A transactional test's flush empties the role groups: give them their permissions."""
    from django.apps import apps

    from access.roles import roles_sync

    roles_sync(apps=apps)


BASE = "/api/v1/conversations"
ANA = {"id": "cust-ana", "email": "ana@example.com", "name": "Ana Souza"}
BEN = {"id": "cust-ben", "email": "ben@example.com", "name": "Ben"}


def key_client(
    owner: User, *, integration: str = "shop", scopes: list[str] | None = None
) -> Client:
    issued = api_key_issue(
        owner=owner,
        name="t",
        scopes=scopes or ["chat", "agents", "approvals"],
        integration=integration,
    )
    return Client(headers={"Authorization": f"Bearer {issued.plaintext}"})


def post(client: Client, url: str, body: dict[str, Any] | None = None, **headers: str) -> Any:
    return client.post(url, body or {}, content_type="application/json", headers=headers)


def open_conversation(client: Client, customer: dict[str, str] | None = ANA, **extra: Any) -> str:
    body: dict[str, Any] = {"metadata": {"ticket": "T-1"}, **extra}
    if customer is not None:
        body["customer"] = customer
    response = post(client, BASE, body)
    assert response.status_code == 201, response.json()
    return str(response.json()["data"]["id"])


@pytest.fixture
def shop(supervisor: User) -> Client:
    return key_client(supervisor)


# --- Conversations -------------------------------------------------------------------------------


def test_create_carries_the_asserted_customer_and_metadata(shop: Client) -> None:
    response = post(shop, BASE, {"customer": ANA, "metadata": {"ticket": "T-9", "n": 2}})

    body = response.json()
    assert response.status_code == 201 and body["success"] is True and body["error"] is None
    data = body["data"]
    assert data["customer"] == {
        "verified": True,
        "source": "api",
        "id": "cust-ana",
        "email": "ana@example.com",
        "name": "Ana Souza",
    }
    assert data["metadata"] == {"ticket": "T-9", "n": 2} and data["integration"] == "shop"
    stored = Conversation.objects.get(pk=data["id"])
    assert stored.is_verified and stored.integration == "shop"


def test_create_without_a_customer_is_anonymous(shop: Client) -> None:
    data = post(shop, BASE, {}).json()["data"]
    assert data["customer"]["verified"] is False and data["customer"]["source"] == ""


@pytest.mark.parametrize(
    "body",
    [
        {"customer": {"id": "x", "email": "not-an-email"}},
        {"customer": {"id": "", "email": "a@example.com"}},
        {"customer": {"email": "a@example.com"}},
        {"metadata": {"blob": "x" * 9000}},
        {"metadata": ["not", "an", "object"]},
        [],
        '"text"',
    ],
    ids=[
        "bad-email",
        "empty-id",
        "no-id",
        "metadata-too-big",
        "metadata-not-object",
        "body-a-list",
        "body-a-string",
    ],
)
def test_create_refuses_bad_input(shop: Client, body: Any) -> None:
    raw = body if isinstance(body, str) else json.dumps(body)
    response = shop.post(BASE, raw, content_type="application/json")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert Conversation.objects.count() == 0


def test_other_integrations_get_404_same_integration_and_staff_see_it(
    shop: Client, supervisor: User, support_agent: User
) -> None:
    conversation_id = open_conversation(shop)
    same = key_client(supervisor, integration="shop")
    other = key_client(supervisor, integration="crm")
    staff = Client()
    staff.force_login(supervisor)

    assert same.get(f"{BASE}/{conversation_id}").status_code == 200
    assert staff.get(f"{BASE}/{conversation_id}").status_code == 200
    for method, url in [
        ("get", f"{BASE}/{conversation_id}"),
        ("get", f"{BASE}/{conversation_id}/messages"),
        ("post", f"{BASE}/{conversation_id}/messages"),
        ("post", f"{BASE}/{conversation_id}/close"),
    ]:
        response = other.get(url) if method == "get" else post(other, url, {"content": "hi"})
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] == "not_found"
    assert other.get(BASE).json()["data"]["items"] == []
    assert Conversation.objects.get(pk=conversation_id).state == "ai_active"


def test_a_key_without_an_integration_sees_only_its_own(supervisor: User) -> None:
    first = key_client(supervisor, integration="")
    second = key_client(supervisor, integration="")
    conversation_id = open_conversation(first)
    assert first.get(f"{BASE}/{conversation_id}").status_code == 200
    assert second.get(f"{BASE}/{conversation_id}").status_code == 404


def test_scope_and_permission_are_required(supervisor: User, viewer: User) -> None:
    no_chat = key_client(supervisor, scopes=["agents"])
    response = post(no_chat, BASE, {"customer": ANA})
    assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"
    read_only = key_client(viewer, scopes=["chat"])
    assert post(read_only, BASE, {}).status_code == 403
    assert read_only.get(BASE).status_code == 200
    assert Client().get(BASE).status_code == 401


def test_list_filters_and_cursor_pages(shop: Client) -> None:
    ids = [open_conversation(shop) for _ in range(5)]
    escalated = Conversation.objects.get(pk=ids[0])
    StateTransition.objects.create(
        conversation=escalated, from_state="ai_active", to_state="escalated"
    )
    Conversation.objects.filter(pk=ids[1]).update(state="closed")

    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = shop.get(BASE, params).json()["data"]
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    assert [i["id"] for i in shop.get(BASE, {"state": "closed"}).json()["data"]["items"]] == [
        ids[1]
    ]
    assert [i["id"] for i in shop.get(BASE, {"escalated": True}).json()["data"]["items"]] == [
        ids[0]
    ]
    assert len(shop.get(BASE, {"escalated": False}).json()["data"]["items"]) == 4
    assert shop.get(BASE, {"updated_since": "2999-01-01T00:00:00Z"}).json()["data"]["items"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "not-a-cursor"},
        {"state": "nonsense"},
        {"limit": 0},
        {"limit": 201},
        {"updated_since": "1"},
        {"updated_since": "yesterday"},
    ],
)
def test_list_refuses_bad_filters(shop: Client, params: dict[str, Any]) -> None:
    response = shop.get(BASE, params)
    assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error"


def test_read_pages_the_messages_by_seq(shop: Client) -> None:
    conversation_id = open_conversation(shop)
    from conversations.services import message_append

    for n in range(4):
        message_append(conversation_id=conversation_id, role="assistant", content=f"m{n}")
    detail = shop.get(f"{BASE}/{conversation_id}", {"limit": 2}).json()["data"]
    assert [m["seq"] for m in detail["messages"]["items"]] == [1, 2]
    after = detail["messages"]["next_after"]
    rest = shop.get(f"{BASE}/{conversation_id}/messages", {"after": after, "limit": 10}).json()
    assert [m["content"] for m in rest["data"]["items"]] == ["m1", "m2", "m3"]
    assert rest["data"]["next_after"] is None
    assert shop.get(f"{BASE}/not-a-uuid").status_code == 422


def test_send_returns_the_reply(shop: Client) -> None:
    conversation_id = open_conversation(shop)
    response = post(shop, f"{BASE}/{conversation_id}/messages", {"content": "hello", "wait": 10})

    data = response.json()["data"]
    assert response.status_code == 200 and data["status"] == "completed"
    assert data["message"]["content"] == "hello" and data["message"]["role"] == "user"
    assert data["replies"] and all(r["role"] != "user" for r in data["replies"])
    assert data["poll"] is None
    assert Turn.objects.get(user_message_id=data["message"]["id"]).status == "completed"


def test_a_slow_turn_answers_202_with_a_poll_link(
    shop: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversation_id = open_conversation(shop)
    original = headless._run_turns
    release = threading.Event()

    def slow(conversation_id: str, **lock: Any) -> Any:
        def later() -> None:
            release.wait(10)
            original(conversation_id, **lock).join(20)

        thread = threading.Thread(target=later, daemon=True)
        thread.start()
        return thread

    monkeypatch.setattr(headless, "_run_turns", slow)
    response = post(shop, f"{BASE}/{conversation_id}/messages", {"content": "hi", "wait": 0.2})

    assert response.status_code == 202, response.json()
    data = response.json()["data"]
    assert data["status"] == "running" and data["replies"] == []
    poll = data["poll"]
    assert poll == f"/api/v1/conversations/{conversation_id}/messages/{data['message']['id']}/reply"
    assert shop.get(poll).status_code == 202
    release.set()
    for _ in range(100):
        polled = shop.get(poll)
        if polled.status_code == 200:
            break
        time.sleep(0.1)
    assert polled.status_code == 200 and polled.json()["data"]["status"] == "completed"
    assert polled.json()["data"]["replies"]


def test_a_resend_with_the_same_client_id_runs_once(shop: Client) -> None:
    conversation_id = open_conversation(shop)
    url = f"{BASE}/{conversation_id}/messages"
    first = post(shop, url, {"content": "hello", "client_id": "c-1"}).json()["data"]
    again = post(shop, url, {"content": "hello", "client_id": "c-1"}).json()["data"]
    assert first["message"]["id"] == again["message"]["id"]
    assert Message.objects.filter(conversation_id=conversation_id, role="user").count() == 1
    assert Turn.objects.filter(conversation_id=conversation_id).count() == 1


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"content": "   "}, "validation_error"),
        ({"content": ""}, "validation_error"),
        ({"content": "x" * 10_001}, "validation_error"),
        ({"content": "hi", "wait": 31}, "validation_error"),
        ({"content": "hi", "wait": -1}, "validation_error"),
        ({"content": "hi", "client_id": "x" * 65}, "validation_error"),
        ({"content": "hi", "wait": "5"}, "validation_error"),
        ({"content": "hi", "wait": True}, "validation_error"),
        ({}, "validation_error"),
    ],
)
def test_send_refuses_bad_input(shop: Client, body: dict[str, Any], code: str) -> None:
    conversation_id = open_conversation(shop)
    response = post(shop, f"{BASE}/{conversation_id}/messages", body)
    assert response.status_code == 422 and response.json()["error"]["code"] == code
    assert not Message.objects.filter(conversation_id=conversation_id, role="user").exists()


def test_close_is_the_state_machine_close_and_harmless_twice(shop: Client) -> None:
    conversation_id = open_conversation(shop)
    first = post(shop, f"{BASE}/{conversation_id}/close")
    again = post(shop, f"{BASE}/{conversation_id}/close")
    assert first.status_code == again.status_code == 200
    assert first.json()["data"]["state"] == "closed"
    assert (
        StateTransition.objects.filter(conversation_id=conversation_id, to_state="closed").count()
        == 1
    )
    # A customer returning to a closed conversation reopens it, as in the chat (docs/analytics.md).
    back = post(shop, f"{BASE}/{conversation_id}/messages", {"content": "hello again"})
    assert back.status_code == 200
    assert Conversation.objects.get(pk=conversation_id).reopen_count == 1


def test_the_chat_rate_limit_applies(shop: Client, settings: Any) -> None:
    settings.CHAT_RATE_LIMIT_MESSAGES = 1
    conversation_id = open_conversation(shop)
    url = f"{BASE}/{conversation_id}/messages"
    assert post(shop, url, {"content": "one"}).status_code == 200
    refused = post(shop, url, {"content": "two"})
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert int(refused["Retry-After"]) >= 1


# --- Interrupts ----------------------------------------------------------------------------------


def _cancel(shop: Client) -> tuple[str, dict[str, Any]]:
    conversation_id = open_conversation(shop)
    data = post(shop, f"{BASE}/{conversation_id}/messages", {"content": "cancel order 1042"})
    reply = data.json()["data"]
    assert reply["status"] == "awaiting_approval", reply
    return conversation_id, reply


def test_cancel_waits_for_approval_then_runs_once(demo: Any, shop: Client) -> None:  # noqa: F811
    from demo_shop.models import Order, OrderEvent

    conversation_id, reply = _cancel(shop)
    [pending] = reply["pending_interrupts"]
    assert pending["operation"] == "cancelOrder" and pending["approver"] == "user"
    listed = shop.get("/api/v1/interrupts", {"conversation_id": conversation_id}).json()["data"]
    assert [i["id"] for i in listed] == [pending["id"]]
    url = f"{BASE}/{conversation_id}/interrupts/{pending['id']}"

    wrong = post(shop, f"{url}/approve", {"arguments_hash": "0" * 64})
    assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "arguments_mismatch"
    missing = post(shop, f"{url}/approve", {})
    assert missing.status_code == 422
    approved = post(shop, f"{url}/approve", {"arguments_hash": pending["arguments_hash"]})
    twice = post(shop, f"{url}/approve", {"arguments_hash": pending["arguments_hash"]})
    late_reject = post(shop, f"{url}/reject")

    assert approved.status_code == 200, approved.json()
    decision = approved.json()["data"]
    assert decision["interrupt"]["status"] == "approved" and decision["state"] == "ai_active"
    assert any(
        "cancel" in r["content"].lower() for r in decision["replies"] if r["role"] == "assistant"
    )
    assert twice.status_code == 200
    assert late_reject.status_code == 409
    assert late_reject.json()["error"]["code"] == "interrupt_already_decided"
    assert Order.objects.get(number=1042).status == "cancelled"
    assert OrderEvent.objects.filter(order__number=1042, kind="cancelled").count() == 1
    assert shop.get("/api/v1/interrupts").json()["data"] == []


def test_reject_runs_nothing(demo: Any, shop: Client) -> None:  # noqa: F811
    from demo_shop.models import Order

    conversation_id, reply = _cancel(shop)
    [pending] = reply["pending_interrupts"]
    rejected = post(shop, f"{BASE}/{conversation_id}/interrupts/{pending['id']}/reject")
    assert rejected.status_code == 200
    assert rejected.json()["data"]["interrupt"]["status"] == "rejected"
    assert Order.objects.get(number=1042).status != "cancelled"


def test_another_integration_cannot_decide(
    demo: Any,  # noqa: F811
    shop: Client,
    supervisor: User,
) -> None:
    conversation_id, reply = _cancel(shop)
    [pending] = reply["pending_interrupts"]
    other = key_client(supervisor, integration="crm")
    response = post(
        other,
        f"{BASE}/{conversation_id}/interrupts/{pending['id']}/approve",
        {"arguments_hash": pending["arguments_hash"]},
    )
    assert response.status_code == 404
    assert other.get("/api/v1/interrupts").json()["data"] == []
    assert Interrupt.objects.get(pk=pending["id"]).status == "pending"


def test_a_staff_approval_needs_the_approvals_scope(
    demo: Any,  # noqa: F811
    supervisor: User,
) -> None:
    chat_only = key_client(supervisor, scopes=["chat"])
    conversation_id = open_conversation(chat_only, customer=BEN)
    reply = post(
        chat_only,
        f"{BASE}/{conversation_id}/messages",
        {"content": "I want a refund of 80 EUR for order 1044 because it arrived broken"},
    ).json()["data"]
    [pending] = reply["pending_interrupts"]
    assert pending["approver"] == "staff"
    url = f"{BASE}/{conversation_id}/interrupts/{pending['id']}/approve"
    body = {"arguments_hash": pending["arguments_hash"]}

    refused = post(chat_only, url, body)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    staff_key = key_client(supervisor, scopes=["chat", "approvals"])
    # The same integration ("shop"), now with the scope.
    assert post(staff_key, url, body).status_code == 200
    assert Interrupt.objects.get(pk=pending["id"]).status == "approved"


def test_an_anonymous_conversation_is_offered_verification_and_cannot_approve(
    demo: Any,  # noqa: F811
    shop: Client,
) -> None:
    anonymous = open_conversation(shop, customer=None)
    reply = post(shop, f"{BASE}/{anonymous}/messages", {"content": "cancel order 1042"}).json()
    assert reply["data"]["pending_interrupts"] == []
    assert "verified customer" in reply["data"]["replies"][0]["content"]
    # An interrupt of a conversation whose identity is gone (the guard, not the runtime's).
    conversation_id, pending_reply = _cancel(shop)
    [pending] = pending_reply["pending_interrupts"]
    Conversation.objects.filter(pk=conversation_id).update(identity_source="", verified_at=None)
    refused = post(
        shop,
        f"{BASE}/{conversation_id}/interrupts/{pending['id']}/approve",
        {"arguments_hash": pending["arguments_hash"]},
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "verification_required"
    assert Interrupt.objects.get(pk=pending["id"]).status == "pending"


# --- Agents --------------------------------------------------------------------------------------


@pytest.fixture
def agent(db: None) -> Agent:
    return Agent.objects.create(slug="orders", name="Orders", description="Order questions")


def test_agents_list_and_read(shop: Client, agent: Agent) -> None:
    listed = shop.get("/api/v1/agents").json()["data"]
    assert [a["slug"] for a in listed] == ["orders"]
    detail = shop.get("/api/v1/agents/orders").json()["data"]
    assert detail["description"] == "Order questions" and detail["operations"] == []
    assert shop.get("/api/v1/agents/nope").status_code == 404


def test_agent_update_reaches_every_process(shop: Client, agent: Agent) -> None:
    before = versions.current(versions.AGENT_TOOLS) or versions.current(versions.AGENT_TOOLS)
    response = shop.patch(
        "/api/v1/agents/orders",
        {"description": "Orders and returns", "tone": "brisk", "enabled": False, "model": "m2"},
        content_type="application/json",
    )
    assert response.status_code == 200, response.json()
    data = response.json()["data"]
    assert data["description"] == "Orders and returns" and data["enabled"] is False
    assert data["model"] == "m2" and data["tone"] == "brisk"
    agent.refresh_from_db()
    assert agent.description == "Orders and returns" and not agent.enabled
    assert versions.current(versions.AGENT_TOOLS) != before


@pytest.mark.parametrize(
    "body",
    [
        {"description": ""},
        {"operations": ["noSuchOperation"]},
        {"enabled": None},
        {"backend": "x" * 51},
        {"backend": "no-such-backend"},
        {"permission": "write"},
    ],
    ids=[
        "empty-description",
        "unknown-operation",
        "null-enabled",
        "long-backend",
        "unknown-backend",
        "unknown-field",
    ],
)
def test_agent_update_refuses_bad_input(shop: Client, agent: Agent, body: dict[str, Any]) -> None:
    response = shop.patch("/api/v1/agents/orders", body, content_type="application/json")
    if "permission" in body:
        # Unknown fields are ignored by the schema; nothing changes.
        assert response.status_code == 200
        agent.refresh_from_db()
        assert agent.permission == "read"
        return
    assert response.status_code == 422, response.json()
    assert response.json()["error"]["code"] == "validation_error"
    agent.refresh_from_db()
    assert agent.description == "Order questions" and agent.enabled


def test_agents_need_the_agents_scope(supervisor: User, agent: Agent) -> None:
    chat_only = key_client(supervisor, scopes=["chat"])
    assert chat_only.get("/api/v1/agents").status_code == 403
    response = chat_only.patch(
        "/api/v1/agents/orders", {"description": "x"}, content_type="application/json"
    )
    assert response.status_code == 403
    assert ApiKey.Scope.AGENTS not in ApiKey.objects.latest("created_at").scopes
