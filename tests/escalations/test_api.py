"""The escalations API (/api/v1/escalations): status codes, the envelope, the 409 of a lost
claim, validation, scopes and permissions."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from access.services import api_key_issue
from conversations.models import Conversation, Message
from escalations.models import Escalation
from tests.escalations.support import escalate

pytestmark = pytest.mark.django_db(transaction=True)

BASE = "/api/v1/escalations"


def client_for(user: User, scopes: list[str] | None = None) -> Client:
    key = api_key_issue(owner=user, name="t", scopes=scopes or ["escalations"])
    return Client(headers={"Authorization": f"Bearer {key.plaintext}"})


@pytest.fixture
def waiting(conversation: Conversation) -> Escalation:
    return escalate(conversation.pk, reason="lost parcel")


def test_list_filters_by_status_and_pages(api: Client, waiting: Escalation) -> None:
    other = Conversation.objects.create(visitor_id="v2")
    escalate(other.pk)

    page = api.get(f"{BASE}?status=waiting&limit=1").json()
    assert page["success"] is True and page["error"] is None
    assert page["data"]["count"] == 2 and len(page["data"]["items"]) == 1
    assert api.get(BASE, {"status": "resolved"}).json()["data"]["count"] == 0
    bad = api.get(BASE, {"status": "nonsense"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"


def test_detail_has_the_packet(api: Client, waiting: Escalation) -> None:
    body = api.get(f"{BASE}/{waiting.pk}").json()
    assert body["data"]["reason"] == "lost parcel"
    assert body["data"]["packet"]["summary"]["trigger"] == "customer_button"
    assert body["data"]["claimed_by"] is None
    missing = api.get(f"{BASE}/999999")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_a_lost_claim_is_a_409_naming_the_winner(
    waiting: Escalation, named_agent: User, second_agent: User
) -> None:
    ana, bea = client_for(named_agent), client_for(second_agent)

    won = ana.post(f"{BASE}/{waiting.pk}/claim")
    again = ana.post(f"{BASE}/{waiting.pk}/claim")
    lost = bea.post(f"{BASE}/{waiting.pk}/claim")

    assert won.status_code == 200 and won.json()["data"]["status"] == "claimed"
    assert won.json()["data"]["claimed_by"]["name"] == "Ana Lima"
    assert again.status_code == 200
    assert lost.status_code == 409
    error = lost.json()["error"]
    assert error["code"] == "already_claimed"
    assert error["details"]["claimed_by"] == "Ana Lima" and error["details"]["claimed_at"]
    assert error["message"].startswith("Claimed by Ana Lima at")


@pytest.mark.parametrize(
    ("payload", "status"),
    [({"content": ""}, 422), ({"content": "   "}, 422), ({"content": "x" * 10_001}, 422),
     ({}, 422), ({"content": "Hello from support"}, 201)],
)  # fmt: skip
def test_staff_messages_are_validated(
    waiting: Escalation, support_agent: User, payload: dict[str, Any], status: int
) -> None:
    client = client_for(support_agent)
    client.post(f"{BASE}/{waiting.pk}/claim")

    response = client.post(
        f"{BASE}/{waiting.pk}/messages", payload, content_type="application/json"
    )

    assert response.status_code == status, response.json()
    stored = Message.objects.filter(role="staff")
    if status == 201:
        data = response.json()["data"]
        assert (data["role"], data["content"]) == ("staff", "Hello from support")
        assert stored.get().seq == data["seq"]
    else:
        assert response.json()["error"]["code"] == "validation_error"
        assert not stored.exists()


def test_resolve_and_hand_back_follow_the_state_machine(
    waiting: Escalation, support_agent: User
) -> None:
    client = client_for(support_agent)
    early = client.post(f"{BASE}/{waiting.pk}/resolve")
    assert early.status_code == 409 and early.json()["error"]["code"] == "invalid_transition"

    client.post(f"{BASE}/{waiting.pk}/claim")
    resolved = client.post(f"{BASE}/{waiting.pk}/resolve")
    assert resolved.status_code == 200 and resolved.json()["data"]["status"] == "resolved"
    late = client.post(f"{BASE}/{waiting.pk}/hand-back")
    assert late.status_code == 409 and late.json()["error"]["code"] == "invalid_transition"


def test_hand_back_over_the_api(waiting: Escalation, support_agent: User) -> None:
    client = client_for(support_agent)
    client.post(f"{BASE}/{waiting.pk}/claim")
    response = client.post(f"{BASE}/{waiting.pk}/hand-back")
    assert response.status_code == 200 and response.json()["data"]["status"] == "handed_back"
    assert Conversation.objects.get().state == "ai_active"


def test_scope_and_permission_are_required(
    waiting: Escalation, support_agent: User, viewer: User
) -> None:
    wrong_scope = client_for(support_agent, scopes=["chat"])
    assert wrong_scope.get(BASE).status_code == 403
    reader = client_for(viewer)
    assert reader.get(BASE).status_code == 200
    refused = reader.post(f"{BASE}/{waiting.pk}/claim")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    assert Client().get(BASE).status_code == 401
    assert Escalation.objects.get().status == "waiting"


def test_the_operations_are_in_the_openapi_schema(client: Client, supervisor: User) -> None:
    client.force_login(supervisor)
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert {"/api/v1/escalations", "/api/v1/escalations/{escalation_id}/claim",
            "/api/v1/escalations/{escalation_id}/messages"} <= set(paths)  # fmt: skip
