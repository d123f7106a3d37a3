"""The claim race on PostgreSQL: two agents (threads with their own connections, as two
processes would have) claim the same escalation at the same instant."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth.models import User
from django.db import connection

from config.errors import ApplicationError, ErrorCode
from conversations.models import Conversation, Message
from escalations.models import Escalation
from escalations.services import escalation_claim
from tests.escalations.support import escalate

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("round_", range(3))
def test_claim_race_has_one_winner(
    postgres: None,
    conversation: Conversation,
    named_agent: User,
    second_agent: User,
    round_: int,
) -> None:
    escalation = escalate(conversation.pk)
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def claim(user: User) -> None:
        try:
            barrier.wait()
            outcomes[user.username] = escalation_claim(
                escalation=Escalation.objects.get(pk=escalation.pk), user=user
            )
        except ApplicationError as exc:
            outcomes[user.username] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(u,)) for u in (named_agent, second_agent)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)

    stored = Escalation.objects.select_related("claimed_by").get(pk=escalation.pk)
    assert stored.status == "claimed" and stored.claimed_by is not None
    winner = stored.claimed_by.username
    loser = next(name for name in outcomes if name != winner)
    assert isinstance(outcomes[winner], Escalation)
    error = outcomes[loser]
    assert isinstance(error, ApplicationError) and error.code == ErrorCode.ALREADY_CLAIMED
    expected = "Ana Lima" if winner == "ana" else "Bea"
    assert error.details["claimed_by"] == expected
    assert Message.objects.filter(conversation=conversation, kind="staff_joined").count() == 1
    assert Conversation.objects.get(pk=conversation.pk).state == "human_active"
    # The winner claiming again changes nothing.
    escalation_claim(escalation=stored, user=stored.claimed_by)
    assert Message.objects.filter(kind="staff_joined").count() == 1
