"""Agents from YAML (load, export, bad files) and the server-rendered chat page."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.test import Client

from conversations.agents import TEMPLATES, agents_export, agents_load, template_text
from conversations.models import Agent, Conversation
from conversations.visitors import COOKIE

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_template_loads(name: str) -> None:
    result = agents_load(text=template_text(name))
    assert result.created and Agent.objects.filter(template=name, is_fallback=True).exists()
    assert result.missing_operations  # none of these operations are imported in this test


def test_load_is_idempotent_and_export_round_trips(tmp_path: Path) -> None:
    agents_load(text=template_text("ecommerce"))
    again = agents_load(text=template_text("ecommerce"))
    assert again.created == [] and len(again.updated) == 5  # verification included
    exported = agents_export()
    Agent.objects.all().delete()
    agents_load(text=exported)
    assert yaml.safe_load(agents_export()) == yaml.safe_load(exported)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("agents: [", "not valid YAML"),
        ("hello: 1", "top-level 'agents' list"),
        ("agents: [1]", "must be a mapping"),
        ("agents: [{slug: a, name: A}]", "needs 'description'"),
        ("agents: [{slug: a, name: A, description: d, colour: red}]", "unknown keys: colour"),
        ("agents: [{slug: a, name: A, description: d, permission: admin}]", "read or write"),
        ("agents: [{slug: a, name: A, description: d, operations: getOrder}]", "must be list"),
        ("agents: [{slug: a, name: A, description: d}, {slug: a, name: B, description: e}]",
         "appears twice"),
    ],
)  # fmt: skip
def test_bad_agent_files_change_nothing(text: str, message: str) -> None:
    agents_load(text=template_text("ecommerce"))
    before = agents_export()
    with pytest.raises(Exception, match=message):
        agents_load(text=text)
    assert agents_export() == before


def test_load_agents_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    call_command("load_agents", "saas")
    assert "4 created" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("agents: [{slug: x}]")
    with pytest.raises(CommandError, match="needs 'name'"):
        call_command("load_agents", str(bad))
    with pytest.raises(CommandError, match="No template"):
        call_command("load_agents", "not-a-template")


def start(client: Client) -> str:
    """The chat page's first message: ``POST /chat/start/``; returns the conversation's page."""
    response = client.post("/chat/start/")
    assert response.status_code == 201
    return str(response.json()["data"]["conversation"]["url"])


def test_home_creates_no_conversation_until_the_first_message(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert Conversation.objects.count() == 0
    assert COOKIE not in response.cookies  # crawlers and health checks get nothing to keep
    assert b'data-ws-path=""' in response.content
    assert b"How can I help" in response.content  # the greeting shows at once
    assert client.get("/").status_code == 200 and Conversation.objects.count() == 0


def test_first_message_starts_a_conversation_bound_to_a_signed_cookie(client: Client) -> None:
    response = client.post("/chat/start/")
    assert response.status_code == 201
    conversation = Conversation.objects.get()
    data = response.json()["data"]["conversation"]
    assert data == {
        "id": str(conversation.pk),
        "ws_path": f"/ws/chat/{conversation.pk}/",
        "state": "ai_active",
        "url": f"/chat/{conversation.pk}/",
    }
    cookie = response.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert conversation.visitor_id and cookie.value.startswith(conversation.visitor_id + ":")
    page = client.get(data["url"])
    assert page.status_code == 200
    assert "Content-Security-Policy" in page.headers
    # Coming back finds the same conversation.
    assert client.get("/")["Location"] == data["url"]


def test_start_needs_post_with_csrf() -> None:
    strict = Client(enforce_csrf_checks=True)
    assert strict.get("/chat/start/").status_code == 405
    assert strict.post("/chat/start/").status_code == 403
    assert Conversation.objects.count() == 0


def test_another_visitor_cannot_open_the_page(client: Client) -> None:
    owner = Client()
    location = start(owner)
    assert client.get(location).status_code == 404
    client.cookies[COOKIE] = "forged:value"
    assert client.get(location).status_code == 404


def test_new_conversation_needs_post_with_csrf(client: Client) -> None:
    start(client)
    assert client.get("/chat/new/").status_code == 405
    strict = Client(enforce_csrf_checks=True)
    assert strict.post("/chat/new/").status_code == 403
    response = client.post("/chat/new/")
    assert response.status_code == 302 and Conversation.objects.count() == 2


def test_history_is_rendered_inert(client: Client) -> None:
    from conversations.services import message_append

    location = start(client)
    conversation = Conversation.objects.get()
    message_append(conversation_id=conversation.pk, role="assistant",
                   content="<script>alert(1)</script>")  # fmt: skip
    page = client.get(location).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
