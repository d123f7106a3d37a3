"""Escalation services against the real database: opening (every trigger), the claim, the
human chat, resolving, handing back and the state machine's refusals."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from analytics.models import Event, EventType
from config.errors import ApplicationError, ErrorCode
from conversations.models import Conversation, Message, Turn
from conversations.services import (
    conversation_transition,
    handoff_request,
    message_append,
    user_message_receive,
)
from escalations.models import Escalation
from escalations.services import (
    escalation_cancel_for_conversation,
    escalation_claim,
    escalation_hand_back,
    escalation_message_send,
    escalation_open,
    escalation_priority_set,
    escalation_resolve,
    escalation_take_over,
    escalations_cancel_closed,
)
from tests.escalations.support import escalate

pytestmark = pytest.mark.django_db(transaction=True)

TRIGGERS = [
    ("customer_button", "The customer asked for a human."),
    ("customer_words", "The customer asked for a human."),
    ("escalate_to_human", "The agent cannot change a billing address."),
    ("tool_auth_error", "getOrder failed: HTTP 401"),
    ("tool_failure", "getOrder failed: timeout"),
    ("llm_unavailable", "No AI backend answered."),
    ("repeated_rejections", "The customer rejected 3 actions."),
    ("too_many_turns", "The conversation reached its turn budget."),
]


@pytest.mark.parametrize(("trigger", "reason"), TRIGGERS)
def test_every_trigger_opens_exactly_one_escalation_with_its_reason(
    conversation: Conversation, trigger: str, reason: str
) -> None:
    assert handoff_request(conversation_id=conversation.pk, trigger=trigger, reason=reason)
    # A second trigger while it waits (the button after the words) adds nothing.
    handoff_request(conversation_id=conversation.pk, trigger="customer_button", reason="again")

    escalation = Escalation.objects.get(conversation=conversation)
    assert escalation.status == "waiting"
    assert (escalation.trigger, escalation.reason) == (trigger, reason)
    assert escalation.packet["summary"]["trigger"] == trigger
    conversation.refresh_from_db()
    assert conversation.state == "escalated"
    created = Event.objects.get(type=EventType.ESCALATION_CREATED)
    assert created.outcome == trigger
    assert created.data["reason"] == reason and created.data["escalation_id"] == escalation.pk


def test_opening_twice_keeps_one_open_escalation(conversation: Conversation) -> None:
    first = escalate(conversation.pk)
    again = escalation_open(conversation=conversation, trigger="tool_failure", reason="x")
    assert again.pk == first.pk
    assert Escalation.objects.count() == 1


def test_a_new_escalation_may_open_once_the_last_one_is_finished(
    conversation: Conversation, support_agent: User
) -> None:
    first = escalate(conversation.pk)
    escalation_claim(escalation=first, user=support_agent)
    escalation_resolve(escalation=first, user=support_agent)
    second = escalate(conversation.pk)
    assert second.pk != first.pk
    assert sorted(Escalation.objects.values_list("status", flat=True)) == ["resolved", "waiting"]


@pytest.mark.parametrize(
    ("trigger", "text", "priority"),
    [
        ("customer_button", "where is my parcel?", "normal"),
        ("tool_auth_error", "where is my parcel?", "high"),
        ("tool_failure", "where is my parcel?", "high"),
        ("customer_button", "I want a refund, you charged me twice", "high"),
    ],
)
def test_priority_is_computed_from_the_facts(
    conversation: Conversation, trigger: str, text: str, priority: str
) -> None:
    user_message_receive(conversation_id=conversation.pk, content=text, client_id="c1")
    escalation = escalate(conversation.pk, trigger=trigger)
    assert escalation.priority == priority
    assert bool(escalation.priority_reason) == (priority == "high")


def test_claim_hands_the_conversation_to_the_agent(
    conversation: Conversation, named_agent: User
) -> None:
    escalation = escalate(conversation.pk)

    claimed = escalation_claim(escalation=escalation, user=named_agent)

    assert claimed.status == "claimed" and claimed.claimed_by == named_agent
    conversation.refresh_from_db()
    assert conversation.state == "human_active"
    joined = Message.objects.get(conversation=conversation, kind="staff_joined")
    assert joined.role == "system"
    assert joined.content == "Ana from support joined the conversation."
    assert joined.payload["frame"] == {"name": "Ana"}
    event = Event.objects.get(type=EventType.ESCALATION_CLAIMED)
    assert event.latency_ms is not None and event.latency_ms >= 0
    assert event.data["escalation_id"] == escalation.pk


def test_the_loser_of_a_claim_is_told_who_won_and_when(
    conversation: Conversation, named_agent: User, second_agent: User
) -> None:
    escalation = escalate(conversation.pk)
    escalation_claim(escalation=escalation, user=named_agent)

    with pytest.raises(ApplicationError) as caught:
        escalation_claim(escalation=escalation, user=second_agent)

    assert caught.value.code == ErrorCode.ALREADY_CLAIMED and caught.value.status == 409
    assert caught.value.message.startswith("Claimed by Ana Lima at ")
    assert caught.value.details["claimed_by"] == "Ana Lima"
    assert caught.value.details["claimed_at"]
    assert Escalation.objects.get().claimed_by == named_agent


def test_claiming_twice_is_harmless(conversation: Conversation, support_agent: User) -> None:
    escalation = escalate(conversation.pk)
    escalation_claim(escalation=escalation, user=support_agent)
    again = escalation_claim(escalation=escalation, user=support_agent)
    assert again.status == "claimed"
    assert Message.objects.filter(kind="staff_joined").count() == 1
    assert Event.objects.filter(type=EventType.ESCALATION_CLAIMED).count() == 1


def test_staff_message_reaches_the_timeline_and_the_first_is_timed(
    conversation: Conversation, named_agent: User
) -> None:
    escalation = escalation_claim(escalation=escalate(conversation.pk), user=named_agent)

    message = escalation_message_send(
        escalation=escalation, user=named_agent, content="Hi, Ana here"
    )
    escalation_message_send(escalation=escalation, user=named_agent, content="Let me check")

    assert (message.role, message.author, message.content) == ("staff", named_agent, "Hi, Ana here")
    assert message.payload["frame"]["author"] == "Ana"
    escalation.refresh_from_db()
    assert escalation.first_staff_message_at is not None
    first = Event.objects.get(type=EventType.STAFF_FIRST_MESSAGE)
    assert first.latency_ms is not None and first.data["since_claim_ms"] is not None


@pytest.mark.parametrize("content", ["", "   \n ", "x" * 10_001])
def test_bad_staff_messages_are_refused(
    conversation: Conversation, support_agent: User, content: str
) -> None:
    escalation = escalation_claim(escalation=escalate(conversation.pk), user=support_agent)
    with pytest.raises(ApplicationError) as caught:
        escalation_message_send(escalation=escalation, user=support_agent, content=content)
    assert caught.value.code in (ErrorCode.EMPTY_MESSAGE, ErrorCode.MESSAGE_TOO_LONG)
    assert not Message.objects.filter(role="staff").exists()


def test_only_the_claimer_or_a_supervisor_may_act(
    conversation: Conversation,
    support_agent: User,
    second_agent: User,
    named_supervisor: User,
) -> None:
    escalation = escalation_claim(escalation=escalate(conversation.pk), user=support_agent)
    for action in (
        lambda: escalation_message_send(escalation=escalation, user=second_agent, content="hi"),
        lambda: escalation_resolve(escalation=escalation, user=second_agent),
        lambda: escalation_hand_back(escalation=escalation, user=second_agent),
    ):
        with pytest.raises(ApplicationError) as caught:
            action()
        assert caught.value.code == ErrorCode.PERMISSION_DENIED
    escalation_message_send(escalation=escalation, user=named_supervisor, content="Sam here")
    assert escalation_resolve(escalation=escalation, user=named_supervisor).status == "resolved"


@pytest.mark.parametrize("action", [escalation_resolve, escalation_hand_back])
def test_a_waiting_escalation_cannot_be_finished_without_a_claim(
    conversation: Conversation, support_agent: User, action: object
) -> None:
    escalation = escalate(conversation.pk)
    with pytest.raises(ApplicationError) as caught:
        action(escalation=escalation, user=support_agent)  # type: ignore[operator]
    assert caught.value.code == ErrorCode.INVALID_TRANSITION
    escalation.refresh_from_db()
    conversation.refresh_from_db()
    assert (escalation.status, conversation.state) == ("waiting", "escalated")


def test_finished_escalations_cannot_loop_back(
    conversation: Conversation, support_agent: User
) -> None:
    escalation = escalation_claim(escalation=escalate(conversation.pk), user=support_agent)
    escalation_resolve(escalation=escalation, user=support_agent)
    # A double click on Resolve is harmless; anything else on a finished escalation is refused.
    assert escalation_resolve(escalation=escalation, user=support_agent).status == "resolved"
    for action in (escalation_hand_back, escalation_claim):
        with pytest.raises(ApplicationError) as caught:
            action(escalation=escalation, user=support_agent)
        assert caught.value.code == ErrorCode.INVALID_TRANSITION
    with pytest.raises(ApplicationError):
        escalation_message_send(escalation=escalation, user=support_agent, content="still there?")
    # The conversation's own machine refuses the shortcut too.
    conversation.refresh_from_db()
    with pytest.raises(ApplicationError) as caught:
        conversation_transition(conversation=conversation, to_state="human_active", reason="x")
    assert caught.value.code == ErrorCode.INVALID_TRANSITION


def test_resolving_then_the_customer_writing_again_reopens_with_the_ai(
    conversation: Conversation, support_agent: User
) -> None:
    escalation = escalation_claim(escalation=escalate(conversation.pk), user=support_agent)
    escalation_resolve(escalation=escalation, user=support_agent)
    conversation.refresh_from_db()
    assert conversation.state == "resolved"
    assert Event.objects.filter(type=EventType.ESCALATION_RESOLVED).count() == 1

    user_message_receive(conversation_id=conversation.pk, content="one more thing", client_id="c9")

    conversation.refresh_from_db()
    assert conversation.state == "ai_active"
    assert conversation.reopen_count == 1
    assert Escalation.objects.get().status == "resolved"


def test_hand_back_gives_the_conversation_to_the_ai_and_tells_the_customer(
    conversation: Conversation, named_agent: User
) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(
        context={"tool_failures": 3, "backend_failures": 1, "order_number": 1042}
    )
    escalation = escalation_claim(escalation=escalate(conversation.pk), user=named_agent)

    escalation_hand_back(escalation=escalation, user=named_agent)

    conversation.refresh_from_db()
    assert conversation.state == "ai_active"
    assert conversation.context == {"tool_failures": 0, "backend_failures": 0, "order_number": 1042}
    back = Message.objects.filter(conversation=conversation).order_by("-seq").first()
    assert back is not None and back.role == "system"
    assert (
        "back with the assistant" in back.content and back.payload["frame"]["state"] == "ai_active"
    )
    escalation.refresh_from_db()
    assert escalation.status == "handed_back" and escalation.handed_back_at is not None
    assert escalation.closed_by == named_agent
    assert Event.objects.filter(type=EventType.ESCALATION_HANDED_BACK).count() == 1


def test_staff_take_over_claims_a_conversation_the_ai_holds(
    conversation: Conversation, support_agent: User
) -> None:
    escalation = escalation_take_over(conversation=conversation, user=support_agent)

    assert escalation.trigger == "staff_takeover" and escalation.opened_by == support_agent
    assert escalation.status == "claimed" and escalation.claimed_by == support_agent
    conversation.refresh_from_db()
    assert conversation.state == "human_active"


def test_take_over_of_a_conversation_someone_else_holds_is_refused(
    conversation: Conversation, support_agent: User, second_agent: User
) -> None:
    escalation_take_over(conversation=conversation, user=support_agent)
    with pytest.raises(ApplicationError) as caught:
        escalation_take_over(conversation=conversation, user=second_agent)
    assert caught.value.code == ErrorCode.ALREADY_CLAIMED


def test_closing_the_conversation_cancels_its_escalation(
    conversation: Conversation, support_agent: User
) -> None:
    other = Conversation.objects.create(visitor_id="v2")
    waiting = escalate(conversation.pk)
    claimed = escalation_claim(escalation=escalate(other.pk), user=support_agent)
    for closing in (conversation, other):
        conversation_transition(conversation=closing, to_state="closed", reason="closed")

    assert escalations_cancel_closed() == 2

    assert {e.status for e in Escalation.objects.filter(pk__in=[waiting.pk, claimed.pk])} == {
        "cancelled"
    }
    assert escalation_cancel_for_conversation(conversation_id=str(conversation.pk)) is None


def test_staff_may_change_the_priority(conversation: Conversation, support_agent: User) -> None:
    escalation = escalate(conversation.pk)
    changed = escalation_priority_set(escalation=escalation, priority="low", user=support_agent)
    assert (changed.priority, changed.priority_reason) == ("low", "set by agent")
    with pytest.raises(ApplicationError):
        escalation_priority_set(escalation=escalation, priority="urgent", user=support_agent)


def test_customer_messages_while_a_human_holds_it_get_no_ai_turn(
    conversation: Conversation, support_agent: User
) -> None:
    from asgiref.sync import async_to_sync

    from conversations.turns.engine import process_conversation

    escalation_claim(escalation=escalate(conversation.pk), user=support_agent)
    message, _ = user_message_receive(
        conversation_id=conversation.pk, content="hello?", client_id="c1"
    )

    async_to_sync(process_conversation)(str(conversation.pk))

    assert Turn.objects.get(user_message=message).status == "skipped"
    assert not Message.objects.filter(conversation=conversation, role="assistant").exists()
    assert not Message.objects.filter(conversation=conversation, seq__gt=message.seq).exists()


def test_system_messages_keep_their_order_with_staff_messages(
    conversation: Conversation, support_agent: User
) -> None:
    escalation = escalation_claim(escalation=escalate(conversation.pk), user=support_agent)
    escalation_message_send(escalation=escalation, user=support_agent, content="one")
    message_append(conversation_id=conversation.pk, role="user", content="two", client_id="x")
    escalation_message_send(escalation=escalation, user=support_agent, content="three")
    seqs = list(Message.objects.filter(conversation=conversation).values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))


def test_a_packet_that_cannot_be_built_does_not_stop_the_handoff(
    conversation: Conversation, monkeypatch: pytest.MonkeyPatch
) -> None:
    from escalations import services

    def broken(**kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "packet_facts_get", broken)

    escalation = escalate(conversation.pk)

    assert escalation.status == "waiting" and "error" in escalation.packet
    assert Event.objects.filter(type=EventType.ESCALATION_CREATED).count() == 1
