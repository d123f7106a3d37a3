"""What one chat turn costs (issue 14 item 7): the customer's message stored, its turn
claimed once, the history read, the intent routed, the reply stored, the turn recorded with
its events. The budgets are ceilings: a change that adds a statement, a transaction, a
savepoint or a Redis round trip to every turn fails here."""

from __future__ import annotations

from typing import Any, cast

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings

from analytics.models import Event
from conversations import protocol
from conversations.agents import agents_load, template_text
from conversations.consumers import ChatConsumer
from conversations.models import Conversation, Message, Turn
from conversations.services import conversation_start
from conversations.turns.engine import wait_idle
from tests.support.costs import sql_cost

pytestmark = pytest.mark.django_db(transaction=True)

MAX_STATEMENTS = 10
MAX_TRANSACTIONS = 3


class Socket:
    """What protocol handlers use of a consumer."""

    def __init__(self, conversation_id: str) -> None:
        self.conversation_id = conversation_id
        self.sent: list[dict[str, Any]] = []

    async def send_json(self, frame: dict[str, Any]) -> None:
        self.sent.append(frame)


def _send(conversation: Conversation, content: str, client_id: str) -> None:
    async def run() -> None:
        await protocol.dispatch(
            cast(ChatConsumer, Socket(str(conversation.pk))),
            {"type": "message", "client_id": client_id, "content": content},
        )
        await wait_idle()

    async_to_sync(run)()


@pytest.fixture
def chatting() -> Conversation:
    agents_load(text=template_text("ecommerce"))
    conversation = conversation_start(visitor_id="visitor-a")
    _send(conversation, "hello there", "warm-up")  # per-process caches filled
    return conversation


def test_a_turn_stays_within_its_database_budget(chatting: Conversation) -> None:
    with sql_cost() as cost:
        _send(chatting, "hello again, how are you?", "c2")
    turns = Turn.objects.filter(conversation=chatting).order_by("pk")
    assert [t.status for t in turns] == ["completed", "completed"]
    reply = Message.objects.filter(conversation=chatting, role="assistant").order_by("seq").last()
    assert reply is not None and reply.turn_id == turns[1].pk
    kinds = set(Event.objects.filter(conversation_id=chatting.pk).values_list("type", flat=True))
    assert {"message_received", "model_called", "message_sent", "turn_completed"} <= kinds
    # Without Redis the configuration stamp lives in the database (config.versions).
    stamp = 0 if settings.REDIS_URL else 1
    assert len(cost.statements) <= MAX_STATEMENTS + stamp, cost.describe()
    assert cost.transactions <= MAX_TRANSACTIONS + stamp, cost.describe()
    assert cost.savepoints == 0, cost.describe()


MAX_REDIS_ROUND_TRIPS = 2


def test_a_turn_makes_at_most_two_redis_round_trips(
    chatting: Conversation, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rate limit, turn lock and version stamp in one script; the lock let go (and the wake
    flag read) in another. Frames published through the channel layer are not counted here."""
    from django.core.cache import cache

    client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
    commands: list[str] = []
    original = client.execute_command

    def counting(*args: Any, **kwargs: Any) -> Any:
        commands.append(str(args[0]))
        return original(*args, **kwargs)

    monkeypatch.setattr(client, "execute_command", counting)
    _send(chatting, "hello again, how are you?", "c2")
    assert Turn.objects.filter(conversation=chatting, status="completed").count() == 2
    assert len(commands) <= MAX_REDIS_ROUND_TRIPS, commands


def test_a_rate_limited_message_is_refused_and_takes_no_lock(
    chatting: Conversation, settings: Any
) -> None:
    from conversations.turns import gate

    settings.CHAT_RATE_LIMIT_MESSAGES = 1
    settings.CHAT_RATE_LIMIT_WINDOW_SECONDS = 3599  # fresh buckets: the warm-up is not counted
    socket = Socket(str(chatting.pk))

    async def run() -> None:
        await protocol.dispatch(
            cast(ChatConsumer, socket),
            {"type": "message", "client_id": "r1", "content": "one"},
        )
        await wait_idle()
        with pytest.raises(Exception, match="Too many messages"):
            await protocol.dispatch(
                cast(ChatConsumer, socket),
                {"type": "message", "client_id": "r2", "content": "two"},
            )

    async_to_sync(run)()
    assert not Message.objects.filter(conversation=chatting, client_id="r2").exists()
    token = gate.lock_acquire(conversation_id=str(chatting.pk))  # nothing left holding it
    assert token is not None
    gate.lock_release(conversation_id=str(chatting.pk), token=token)
