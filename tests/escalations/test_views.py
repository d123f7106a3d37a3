"""The staff pages under the admin: the live queue, the handoff page and their buttons, the
staff approval of actions, and the Escalation admin."""

from __future__ import annotations

from typing import Any, cast

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from django.test import Client

from conversations.models import Conversation, Interrupt, Message, ToolCall
from conversations.services import user_message_receive
from escalations.models import Escalation
from escalations.services import escalation_claim
from tests.conversations.chat import connect, frames_until, turn_ended, verify_customer
from tests.escalations.support import escalate, idle
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db(transaction=True)

QUEUE = "/admin/escalations/queue/"


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def handoff(escalation: Escalation) -> str:
    return f"/admin/escalations/handoff/{escalation.pk}/"


def flash(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_the_queue_page_lists_escalations_without_inline_code(
    conversation: Conversation, support_agent: User
) -> None:
    escalation = escalate(conversation.pk, reason="lost parcel")

    response = logged_in(support_agent).get(QUEUE)

    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-escalation-id="{escalation.pk}"' in html
    assert "lost parcel" in html and f'action="{handoff(escalation)}claim/"' in html
    assert 'src="/static/escalations/queue.js"' in html
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    # Scripts come from files only (a JSON data block would be fine, code is not).
    assert "<script>" not in html


def test_the_queue_page_is_for_staff_with_the_permission(
    viewer: User, django_user_model: type[User], roles: None
) -> None:
    assert Client().get(QUEUE).status_code == 302  # to the admin login
    bare = cast(User, StaffFactory(username="bare"))
    assert logged_in(bare).get(QUEUE).status_code == 403
    page = logged_in(viewer).get(QUEUE)
    assert page.status_code == 200 and b"esc-claim" not in page.content


def test_the_admin_index_links_to_the_live_queue(support_agent: User) -> None:
    response = logged_in(support_agent).get("/admin/")
    assert b'href="/admin/escalations/queue/"' in response.content
    assert b"Live queue" in response.content


def test_claim_from_the_queue_opens_the_handoff_page(
    conversation: Conversation, named_agent: User, second_agent: User
) -> None:
    escalation = escalate(conversation.pk)

    won = logged_in(named_agent).post(f"{handoff(escalation)}claim/")
    lost = logged_in(second_agent).post(f"{handoff(escalation)}claim/", follow=True)

    assert won.status_code == 302 and won["Location"] == handoff(escalation)
    assert lost.redirect_chain[-1][0] == QUEUE
    assert any(m.startswith("Claimed by Ana Lima at") for m in flash(lost))
    assert Escalation.objects.get().claimed_by == named_agent


def test_the_handoff_page_shows_the_masked_packet_and_the_escaped_timeline(
    conversation: Conversation, support_agent: User
) -> None:
    user_message_receive(
        conversation_id=conversation.pk,
        content="<script>alert(1)</script> mail me at jane.doe@example.com",
        client_id="c1",
    )
    escalation = escalation_claim(escalation=escalate(conversation.pk), user=support_agent)

    html = logged_in(support_agent).get(handoff(escalation)).content.decode()

    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # The timeline is the conversation itself; the packet is masked.
    packet = html.split('id="handoff-packet"', 1)[1]
    assert "jane.doe@example.com" not in packet and "j***@example.com" in packet
    assert 'id="handoff-composer"' in html and 'data-can-write="1"' in html
    assert f"/admin/conversations/conversation/{conversation.pk}/change/" in html


def test_write_resolve_and_hand_back_from_the_handoff_page(
    conversation: Conversation, support_agent: User, second_agent: User
) -> None:
    client = logged_in(support_agent)
    escalation = escalate(conversation.pk)
    client.post(f"{handoff(escalation)}claim/")

    client.post(f"{handoff(escalation)}message/", {"content": "Hello, I'm on it"})
    refused = logged_in(second_agent).post(
        f"{handoff(escalation)}message/", {"content": "me"}, follow=True
    )
    empty = client.post(f"{handoff(escalation)}message/", {"content": "  "}, follow=True)

    assert list(Message.objects.filter(role="staff").values_list("content", flat=True)) == [
        "Hello, I'm on it"
    ]
    assert any("only they or a supervisor" in m for m in flash(refused))
    assert "The message is empty." in flash(empty)
    client.post(f"{handoff(escalation)}hand-back/")
    assert Escalation.objects.get().status == "handed_back"
    assert Conversation.objects.get().state == "ai_active"


def test_resolve_from_the_handoff_page(conversation: Conversation, support_agent: User) -> None:
    client = logged_in(support_agent)
    escalation = escalate(conversation.pk)
    early = client.post(f"{handoff(escalation)}resolve/", follow=True)
    assert flash(early) == ["Claim this escalation before you resolve it."]
    client.post(f"{handoff(escalation)}claim/")
    client.post(f"{handoff(escalation)}resolve/")
    assert Escalation.objects.get().status == "resolved"
    assert Conversation.objects.get().state == "resolved"


def test_take_over_from_the_queue(conversation: Conversation, support_agent: User) -> None:
    client = logged_in(support_agent)
    assert f"/admin/escalations/take-over/{conversation.pk}/" in client.get(QUEUE).content.decode()

    response = client.post(f"/admin/escalations/take-over/{conversation.pk}/")

    escalation = Escalation.objects.get()
    assert response["Location"] == handoff(escalation)
    assert (escalation.trigger, escalation.claimed_by) == ("staff_takeover", support_agent)


def test_priority_is_changed_from_the_handoff_page(
    conversation: Conversation, support_agent: User
) -> None:
    escalation = escalate(conversation.pk)
    logged_in(support_agent).post(f"{handoff(escalation)}priority/", {"priority": "high"})
    assert Escalation.objects.get().priority == "high"


def test_escalation_admin_lists_and_claims(conversation: Conversation, supervisor: User) -> None:
    escalation = escalate(conversation.pk)
    client = logged_in(supervisor)
    assert client.get("/admin/escalations/escalation/?status=waiting").status_code == 200
    page = client.get(f"/admin/escalations/escalation/{escalation.pk}/change/")
    assert page.status_code == 200 and b"esc-json" in page.content
    client.post(
        "/admin/escalations/escalation/",
        {"action": "claim_selected", "_selected_action": [escalation.pk]},
    )
    assert Escalation.objects.get().claimed_by == supervisor


# --- Staff approvals (a refund above REFUND_STAFF_THRESHOLD) -------------------------------------


def _staff_refund(conversation: Conversation, settings: Any, amount: int = 80) -> Interrupt:
    from openapi_import.models import Operation

    Operation.objects.filter(operation_id="createRefund").update(approval="user")
    settings.REFUND_STAFF_THRESHOLD = 50

    async def ask() -> None:
        ws, _ = await connect(conversation.pk, "visitor-a")
        await idle()  # the runtime's check at connect
        await ws.send_json_to(
            {"type": "message", "client_id": "c1",
             "content": f"I want a refund of {amount} EUR for order 1044 because it arrived broken"}
        )  # fmt: skip
        await frames_until(ws, turn_ended)
        await ws.disconnect()
        await idle()

    async_to_sync(ask)()
    interrupt = Interrupt.objects.get()
    assert interrupt.approver == "staff"
    return interrupt


def _refunds() -> list[Any]:
    from demo_shop.models import Refund

    return list(Refund.objects.filter(order__number=1044).values_list("amount", flat=True))


def test_staff_approve_a_refund_from_the_handoff_page_once(
    demo: Any, conversation: Conversation, support_agent: User, settings: Any
) -> None:
    verify_customer(conversation.pk, email="ben@example.com")
    interrupt = _staff_refund(conversation, settings)
    escalation = escalation_claim(escalation=escalate(conversation.pk), user=support_agent)
    client = logged_in(support_agent)
    page = client.get(handoff(escalation)).content.decode()
    decide = f"/admin/escalations/interrupts/{interrupt.pk}/decide/"
    assert f'action="{decide}"' in page

    # A double click: the same approval twice.
    for _ in range(2):
        client.post(decide, {"decision": "approve", "next": handoff(escalation)})

    interrupt.refresh_from_db()
    assert (interrupt.status, interrupt.decided_by, interrupt.decision_source) == (
        "approved",
        support_agent,
        "staff",
    )
    assert [str(a) for a in _refunds()] == ["80.00"]
    assert ToolCall.objects.get(operation_name="createRefund").status == "succeeded"


def test_staff_may_correct_the_arguments_before_approving(
    demo: Any, conversation: Conversation, support_agent: User, settings: Any
) -> None:
    verify_customer(conversation.pk, email="ben@example.com")
    interrupt = _staff_refund(conversation, settings)
    client = logged_in(support_agent)
    decide = f"/admin/escalations/interrupts/{interrupt.pk}/decide/"
    arguments = {**interrupt.arguments}
    body = dict(arguments.get("body", {}))

    bad = client.post(decide, {"decision": "approve", "arguments": "{not json"}, follow=True)
    assert flash(bad) == ["The arguments are not valid JSON."]
    body["amount"] = 60
    import json

    client.post(
        decide, {"decision": "approve", "arguments": json.dumps({**arguments, "body": body})}
    )

    interrupt.refresh_from_db()
    assert interrupt.status == "approved" and interrupt.edited is True
    assert [str(a) for a in _refunds()] == ["60.00"]


def test_deciding_needs_the_permission(
    demo: Any, conversation: Conversation, viewer: User, settings: Any
) -> None:
    verify_customer(conversation.pk, email="ben@example.com")
    interrupt = _staff_refund(conversation, settings)
    response = logged_in(viewer).post(
        f"/admin/escalations/interrupts/{interrupt.pk}/decide/", {"decision": "approve"}
    )
    assert response.status_code == 403
    assert Interrupt.objects.get().status == "pending" and _refunds() == []
