"""Frames of committed writes: gathered per step in an outbox and published in one
channel-layer message per conversation, never before the commit."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction

from conversations import realtime
from conversations.models import Conversation, Message, Turn
from conversations.realtime import Outbox, collecting
from conversations.services import message_append

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def published(monkeypatch: Any) -> list[tuple[str, list[dict[str, Any]]]]:
    sent: list[tuple[str, list[dict[str, Any]]]] = []

    async def record(conversation_id: Any, frames: list[dict[str, Any]]) -> None:
        sent.append((str(conversation_id), list(frames)))

    monkeypatch.setattr(realtime, "send_frames", record)
    return sent


async def test_a_steps_frames_go_out_together_per_conversation(
    conversation: Conversation, published: list[Any]
) -> None:
    other = await Conversation.objects.acreate(visitor_id="visitor-b")
    box = Outbox()

    def step() -> None:
        with collecting(box):
            message_append(conversation_id=conversation.pk, role="user", content="one")
            message_append(conversation_id=other.pk, role="user", content="elsewhere")
            message_append(conversation_id=conversation.pk, role="assistant", content="two")

    await sync_to_async(step)()
    assert published == []  # nothing leaves before the caller flushes
    await box.flush()
    by_conversation = {cid: [f["content"] for f in frames] for cid, frames in published}
    assert by_conversation == {str(conversation.pk): ["one", "two"], str(other.pk): ["elsewhere"]}
    assert len(published) == 2
    assert box.frames == []


async def test_a_rolled_back_write_publishes_nothing(
    conversation: Conversation, published: list[Any]
) -> None:
    box = Outbox()

    def step() -> None:
        with collecting(box), transaction.atomic():
            message_append(conversation_id=conversation.pk, role="user", content="undone")
            transaction.set_rollback(True)

    await sync_to_async(step)()
    await box.flush()
    assert published == []
    assert not await Message.objects.filter(content="undone").aexists()


async def test_outside_a_step_a_write_is_sent_on_commit(
    conversation: Conversation, published: list[Any]
) -> None:
    await sync_to_async(message_append)(conversation_id=conversation.pk, role="user", content="x")
    assert [[f["content"] for f in frames] for _, frames in published] == [["x"]]


async def test_a_commit_after_the_step_ended_is_still_sent(
    conversation: Conversation, published: list[Any]
) -> None:
    """A step run inside someone else's transaction commits after the outbox was flushed:
    the frame must not wait in a box nobody flushes any more."""
    box = Outbox()

    def outer() -> None:
        with transaction.atomic(), collecting(box):
            message_append(conversation_id=conversation.pk, role="user", content="late")

    await sync_to_async(outer)()
    assert box.frames == []
    assert [[f["content"] for f in frames] for _, frames in published] == [["late"]]


async def test_work_summary_in_one_query(conversation: Conversation) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from conversations.selectors import conversation_work_summary
    from conversations.services import user_message_receive

    def summary() -> Any:
        with CaptureQueriesContext(connection) as queries:
            result = conversation_work_summary(conversation_id=conversation.pk)
        assert len(queries) == 1
        return result

    empty = await sync_to_async(summary)()
    assert (empty.unsettled_interrupts, empty.waiting_message_id, empty.state) == (
        False,
        None,
        "ai_active",
    )
    message, _ = await sync_to_async(user_message_receive)(
        conversation_id=conversation.pk, content="hi", client_id="c1"
    )
    waiting = await sync_to_async(summary)()
    assert waiting.waiting_message_id == message.pk
    await Turn.objects.acreate(conversation=conversation, user_message=message)
    taken = await sync_to_async(summary)()
    assert taken.waiting_message_id is None


async def test_a_resend_uses_no_sequence_number(conversation: Conversation) -> None:
    from conversations.services import user_message_receive

    first, created = await sync_to_async(user_message_receive)(
        conversation_id=conversation.pk, content="hi", client_id="same"
    )
    again, created_again = await sync_to_async(user_message_receive)(
        conversation_id=conversation.pk, content="hi", client_id="same"
    )
    assert created and not created_again and again.pk == first.pk
    refreshed = await Conversation.objects.aget(pk=conversation.pk)
    assert refreshed.last_seq == first.seq == 1
    assert refreshed.title == "hi"
    await sync_to_async(user_message_receive)(
        conversation_id=conversation.pk, content="second", client_id="other"
    )
    refreshed = await Conversation.objects.aget(pk=conversation.pk)
    assert (refreshed.last_seq, refreshed.title) == (2, "hi")  # the first message names it


async def test_a_closed_conversation_takes_the_message_and_reopens(
    conversation: Conversation,
) -> None:
    from conversations.services import user_message_receive

    await Conversation.objects.filter(pk=conversation.pk).aupdate(state="closed")
    message, created = await sync_to_async(user_message_receive)(
        conversation_id=conversation.pk, content="hello?", client_id="c1"
    )
    refreshed = await Conversation.objects.aget(pk=conversation.pk)
    assert created and message.seq == 1
    assert (refreshed.state, refreshed.last_seq, refreshed.reopen_count) == ("ai_active", 1, 1)
