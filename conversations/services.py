"""Conversation writes: starting conversations, appending timeline items (each with the next
sequence number, broadcast after commit), receiving customer messages, and the state machine of
SPEC §7 with every transition recorded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import structlog
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from analytics.models import EventType
from analytics.services import event_record
from config.errors import ApplicationError, ErrorCode
from conversations.handoff import handoff_receiver
from conversations.models import Agent, Conversation, Interrupt, Message, StateTransition, Turn
from conversations.realtime import broadcast_on_commit, message_frame

logger = structlog.get_logger(__name__)

State = Conversation.State

# SPEC §7. "closed" is reachable from every state and leaves nowhere.
TRANSITIONS: dict[str, frozenset[str]] = {
    State.AI_ACTIVE: frozenset({State.AWAITING_APPROVAL, State.ESCALATED, State.RESOLVED}),
    State.AWAITING_APPROVAL: frozenset({State.AI_ACTIVE, State.ESCALATED}),
    State.ESCALATED: frozenset({State.HUMAN_ACTIVE, State.AI_ACTIVE}),
    State.HUMAN_ACTIVE: frozenset({State.RESOLVED, State.AI_ACTIVE}),
    State.RESOLVED: frozenset({State.AI_ACTIVE}),
    State.CLOSED: frozenset(),
}
# While a human holds (or is about to hold) the conversation the AI stays silent.
AI_SILENT_STATES = frozenset({State.ESCALATED, State.HUMAN_ACTIVE, State.CLOSED})


def conversation_start(*, visitor_id: str = "", user: User | None = None) -> Conversation:
    conversation = Conversation.objects.create(visitor_id=visitor_id, user=user)
    event_record(type=EventType.CONVERSATION_STARTED, conversation_id=conversation.pk)
    logger.info("conversation_started", conversation_id=str(conversation.pk))
    return conversation


def message_append(
    *,
    conversation_id: UUID | str,
    kind: str = Message.Kind.MESSAGE,
    role: str,
    content: str = "",
    payload: dict[str, Any] | None = None,
    client_id: str | None = None,
    turn: Turn | None = None,
    agent: Agent | None = None,
    author: User | None = None,
    conversation_context: dict[str, Any] | None = None,
) -> Message:
    """Store a timeline item with the conversation's next ``seq`` and broadcast it on commit.
    ``conversation_context`` also sets the conversation's context, in the same statement that
    takes the ``seq`` (a reply that remembers what it asked)."""
    # No savepoint inside a caller's transaction: nothing here is caught and retried, so a
    # failure rolls back the caller's block anyway (and it saves two round trips a message).
    with transaction.atomic(savepoint=False):
        seq, _, _ = _seq_next(conversation_id, context=conversation_context)
        return _message_store(
            conversation_id=conversation_id,
            seq=seq,
            kind=kind,
            role=role,
            content=content,
            payload=payload or {},
            client_id=client_id,
            turn=turn,
            agent=agent,
            author=author,
        )


def _seq_next(
    conversation_id: UUID | str,
    *,
    title: str = "",
    context: dict[str, Any] | None = None,
    pending_decisions: bool = False,
) -> tuple[int, str, int]:
    """Take the conversation's next ``seq`` (and set its title if it has none, and its
    ``context`` when given); returns the seq, the conversation's state and, with
    ``pending_decisions``, how many of its interrupts wait for a decision (else 0). Call
    inside a transaction: the updated row stays locked until commit, which serialises seq
    allocation between processes.

    One ``UPDATE … RETURNING`` (PostgreSQL, SQLite ≥ 3.35) in place of a locked read, an
    update and a look-up: the ORM's ``update()`` returns no values, and this runs on every
    message of every chat turn (docs/performance.md)."""
    quote = connection.ops.quote_name
    table = quote(Conversation._meta.db_table)
    key = Conversation._meta.pk.get_db_prep_value(conversation_id, connection)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    sets = (
        "last_seq = last_seq + 1, updated_at = %s, "
        "title = CASE WHEN title = '' THEN %s ELSE title END"
    )
    params: list[Any] = [now, title[:200]]
    if context is not None:
        sets += ", context = %s"
        params.append(Conversation._meta.get_field("context").get_db_prep_save(context, connection))
    pending = "0"
    if pending_decisions:
        pending = (
            f"(SELECT COUNT(*) FROM {quote(Interrupt._meta.db_table)} i "  # noqa: S608
            "WHERE i.conversation_id = %s AND i.status = %s AND i.expires_at > %s)"
        )
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {sets} WHERE id = %s RETURNING last_seq, state, {pending}",  # noqa: S608
            [*params, key, *([key, Interrupt.Status.PENDING, now] if pending_decisions else [])],
        )
        row = cursor.fetchone()
    if row is None:
        raise Conversation.DoesNotExist(f"No conversation {conversation_id}.")
    return int(row[0]), str(row[1]), int(row[2])


def _message_store(*, conversation_id: UUID | str, **fields: Any) -> Message:
    message = Message.objects.create(conversation_id=conversation_id, **fields)
    broadcast_on_commit(conversation_id, message_frame(message))
    return message


@dataclass(frozen=True)
class Received:
    message: Message
    created: bool  # False: this client_id was stored already (a resend after a reconnect)
    decisions_pending: bool = False  # an action of the conversation waits for a decision


def user_message_store(*, conversation_id: UUID | str, content: str, client_id: str) -> Received:
    """Store a customer's message before anything else happens: sequence number, title and
    the message in one transaction (two statements), which also tells whether an action
    waits for a decision. A resend (same ``client_id``) or a closed conversation rolls it
    all back."""
    try:
        with transaction.atomic():
            seq, state, pending = _seq_next(conversation_id, title=content, pending_decisions=True)
            if state == State.CLOSED:
                raise ApplicationError(ErrorCode.INVALID_TRANSITION, "This conversation is closed.")
            message = _message_store(
                conversation_id=conversation_id,
                seq=seq,
                kind=Message.Kind.MESSAGE,
                role=Message.Role.USER,
                content=content,
                payload={},
                client_id=client_id,
            )
    except IntegrityError:
        # A resend after a reconnect, or two sockets sending the same client_id at once: the
        # first one stored it.
        existing = Message.objects.get(conversation_id=conversation_id, client_id=client_id)
        return Received(existing, False)
    if state == State.RESOLVED:
        conversation_transition(
            conversation=Conversation.objects.get(pk=conversation_id),
            to_state=State.AI_ACTIVE,
            reason="customer wrote again",
        )
    event_record(
        type=EventType.MESSAGE_RECEIVED,
        conversation_id=conversation_id,
        data={"chars": len(content)},
    )
    return Received(message, True, pending > 0)


def user_message_receive(
    *, conversation_id: UUID | str, content: str, client_id: str
) -> tuple[Message, bool]:
    """Store a customer's message before anything else happens; ``(message, False)`` when this
    ``client_id`` was already stored (a resend after a reconnect), which must not run again."""
    received = user_message_store(
        conversation_id=conversation_id, content=content, client_id=client_id
    )
    return received.message, received.created


def conversation_transition(
    *,
    conversation: Conversation,
    to_state: str,
    reason: str,
    actor: User | None = None,
) -> Conversation:
    """Move along the state machine (SPEC §7) or raise ``invalid_transition``."""
    with transaction.atomic():
        current = Conversation.objects.select_for_update().get(pk=conversation.pk)
        from_state = current.state
        if from_state == to_state:
            conversation.state = from_state
            return conversation
        allowed = to_state == State.CLOSED or to_state in TRANSITIONS[from_state]
        if from_state == State.CLOSED or not allowed:
            raise ApplicationError(
                ErrorCode.INVALID_TRANSITION,
                f"A conversation cannot go from {from_state} to {to_state}.",
                details={"from": from_state, "to": to_state},
            )
        updates: dict[str, Any] = {"state": to_state, "updated_at": timezone.now()}
        reopened = from_state == State.RESOLVED and to_state == State.AI_ACTIVE
        if reopened:
            updates["reopen_count"] = F("reopen_count") + 1
        Conversation.objects.filter(pk=conversation.pk).update(**updates)
        StateTransition.objects.create(
            conversation=current,
            from_state=from_state,
            to_state=to_state,
            reason=reason,
            actor=actor,
        )
        event_record(
            type=EventType.STATE_CHANGED,
            conversation_id=conversation.pk,
            outcome=to_state,
            data={"from": from_state, "to": to_state, "reason": reason, "reopen": reopened},
        )
    conversation.state = to_state
    logger.info(
        "conversation_state_changed",
        conversation_id=str(conversation.pk),
        from_state=from_state,
        to_state=to_state,
        reason=reason,
    )
    return conversation


def conversation_context_update(*, conversation_id: UUID | str, context: dict[str, Any]) -> None:
    Conversation.objects.filter(pk=conversation_id).update(context=context)


DEFAULT_ESCALATION_MESSAGE = (
    "I've asked a member of our support team to join. They'll be with you shortly; your "
    "conversation so far is shared with them."
)


def handoff_request(
    *,
    conversation_id: UUID | str,
    trigger: str,
    reason: str,
    actor: User | None = None,
) -> bool:
    """Hand the conversation to humans (SPEC §7). Returns ``False`` when it already is."""
    conversation = Conversation.objects.select_related("current_agent").get(pk=conversation_id)
    if conversation.state in (State.ESCALATED, State.HUMAN_ACTIVE, State.CLOSED):
        return False
    if conversation.state == State.RESOLVED:
        conversation_transition(
            conversation=conversation,
            to_state=State.AI_ACTIVE,
            reason="reopened for a handoff",
            actor=actor,
        )
    with transaction.atomic():
        # Under the row lock: of two concurrent handoffs only the first posts and opens one.
        locked = Conversation.objects.select_for_update().get(pk=conversation_id)
        if locked.state in (State.ESCALATED, State.HUMAN_ACTIVE, State.CLOSED):
            return False
        conversation_transition(
            conversation=conversation,
            to_state=State.ESCALATED,
            reason=f"{trigger}: {reason}",
            actor=actor,
        )
    agent = conversation.current_agent
    message_append(
        conversation_id=conversation_id,
        kind=Message.Kind.ESCALATED,
        role=Message.Role.SYSTEM,
        content=(
            agent.escalation_message
            if agent and agent.escalation_message
            else DEFAULT_ESCALATION_MESSAGE
        ),
        payload={"frame": {"trigger": trigger}},
    )
    event_record(
        type=EventType.ESCALATION_REQUESTED,
        conversation_id=conversation_id,
        outcome=trigger,
        data={"reason": reason},
    )
    logger.info("handoff_requested", conversation_id=str(conversation_id), trigger=trigger)
    _open_escalation(conversation, trigger=trigger, reason=reason, actor=actor)
    return True


def _open_escalation(
    conversation: Conversation, *, trigger: str, reason: str, actor: User | None
) -> None:
    """Whoever takes hand-offs (the escalations app) takes it from here."""
    receiver = handoff_receiver()
    if receiver is not None:
        receiver(conversation=conversation, trigger=trigger, reason=reason, actor=actor)
