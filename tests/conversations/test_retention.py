"""MESSAGE_RETENTION_DAYS (issue 18 item 10): past it, the scheduler's job masks message text,
tool arguments and results; newer rows stay as typed, analytics figures stay, off at 0."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from analytics.models import Event, EventType
from analytics.services import event_record
from conversations import jobs
from conversations.models import Conversation, Message, ToolCall, Turn
from conversations.services import conversation_start, message_append

pytestmark = pytest.mark.django_db

TYPED = "I'm ana@example.com, card 4242 4242 4242 4242, call +44 20 7946 0958, order 1042"


def _old(model: Any, days: int, **filters: Any) -> None:
    model.objects.filter(**filters).update(created_at=timezone.now() - timedelta(days=days))


@pytest.fixture
def history() -> Conversation:
    conversation = conversation_start(visitor_id="visitor-a")
    old = message_append(
        conversation_id=conversation.pk, role=Message.Role.USER, content=TYPED,
        payload={"frame": {"note": "ana@example.com"}},
    )  # fmt: skip
    turn = Turn.objects.create(
        conversation=conversation,
        user_message=old,
        plan={"messages": [{"content": TYPED}], "pii": {"email_1": "ana@example.com"}, "index": 0},
        prompt_tokens=120,
    )
    ToolCall.objects.create(
        conversation=conversation, turn=turn, operation_name="listOrders",
        arguments={"email": "ana@example.com", "order_number": 1042},
        result={"orders": [{"number": 1042, "email": "ana@example.com", "total": "59.90"}]},
        status=ToolCall.Status.SUCCEEDED,
    )  # fmt: skip
    Conversation.objects.filter(pk=conversation.pk).update(context={"email": "ana@example.com"})
    event_record(
        type=EventType.MESSAGE_RECEIVED, conversation_id=conversation.pk, data={"chars": 80}
    )
    _old(Message, 40, pk=old.pk)
    _old(ToolCall, 40)
    message_append(conversation_id=conversation.pk, role=Message.Role.USER, content=TYPED)
    return conversation


def test_old_text_is_masked_and_new_text_kept(settings: Any, history: Conversation) -> None:
    settings.MESSAGE_RETENTION_DAYS = 30
    events = Event.objects.count()
    assert jobs.message_retention() == {"messages": 1, "tool_calls": 1}
    old, new = Message.objects.filter(conversation=history, role="user").order_by("seq")
    assert old.content == "I'm a***@example.com, card [card ••••4242], call [phone], order 1042"
    assert old.payload == {"frame": {"note": "a***@example.com"}}
    assert old.masked_at is not None
    assert new.content == TYPED and new.masked_at is None  # inside retention: as typed
    call = ToolCall.objects.get()
    assert call.arguments == {"email": "a***@example.com", "order_number": 1042}
    assert call.result == {
        "orders": [{"number": 1042, "email": "a***@example.com", "total": "59.90"}]
    }
    turn = Turn.objects.get()
    assert "messages" not in turn.plan and "pii" not in turn.plan and turn.plan["index"] == 0
    assert turn.prompt_tokens == 120  # figures stay
    history.refresh_from_db()
    assert history.context == {"email": "a***@example.com"}
    assert Event.objects.count() == events
    # Once: a second run finds nothing new.
    assert jobs.message_retention() == {"messages": 0, "tool_calls": 0}


def test_retention_off_keeps_everything(settings: Any, history: Conversation) -> None:
    settings.MESSAGE_RETENTION_DAYS = 0
    assert jobs.message_retention() == {"messages": 0, "tool_calls": 0}
    assert Message.objects.filter(content=TYPED).count() == 2


def test_job_is_registered_with_the_scheduler() -> None:
    from config.scheduler import jobs_discover

    assert "message_retention" in {job.name for job in jobs_discover()}


@pytest.mark.parametrize("value", ["-1", "thirty"])
def test_bad_retention_setting_is_refused(monkeypatch: Any, value: str) -> None:
    from config.settings.base import EnvError, env_int

    monkeypatch.setenv("MESSAGE_RETENTION_DAYS", value)
    with pytest.raises(EnvError):
        env_int("MESSAGE_RETENTION_DAYS", 0, minimum=0)
