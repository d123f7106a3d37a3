"""Headless chat for programs (the API, SPEC §11): open a conversation for a customer the
program vouches for, send a message and wait for the reply, decide an approval, close.

A message goes the chat's way: the same rate limit, turn lock and storage
(``protocol.customer_message_receive``), then the engine's entry point, ``process_conversation``,
runs the turn on a thread of this process, so the reply does not wait for a job worker. The
request waits up to ``wait`` seconds for the turn to settle and otherwise answers with a link to
poll; the turn goes on either way, and a turn cut short by the process dying is recovered as any
chat turn is (``process_pending``).
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, cast

import structlog
from asgiref.sync import SyncToAsync, async_to_sync
from django.contrib.auth.models import User
from django.db import connections, transaction

from config.errors import ApplicationError, ErrorCode
from conversations.identity import conversation_create_for_customer
from conversations.interrupts import interrupt_decide
from conversations.models import Conversation, Interrupt, Message, ToolCall, Turn
from conversations.protocol import customer_message_receive
from conversations.services import conversation_start

logger = structlog.get_logger(__name__)

POLL_SECONDS = 0.05
RUNNING = "running"
WAITING = "waiting"  # stored, held until a pending approval is decided


@dataclass
class Reply:
    status: str
    message: Message
    replies: list[Message] = field(default_factory=list)
    pending_interrupts: list[Interrupt] = field(default_factory=list)
    poll: str | None = None


def conversation_open(
    *, integration: str, customer: dict[str, str] | None, metadata: dict[str, Any]
) -> Conversation:
    """A conversation owned by ``integration``; verified when the program names its customer."""
    with transaction.atomic():
        if customer is not None:
            conversation = conversation_create_for_customer(
                customer_id=customer["id"], email=customer["email"], name=customer.get("name", "")
            )
        else:
            conversation = conversation_start()
        Conversation.objects.filter(pk=conversation.pk).update(
            integration=integration, metadata=metadata
        )
    conversation.integration, conversation.metadata = integration, metadata
    logger.info(
        "conversation_opened_by_program",
        conversation_id=str(conversation.pk),
        integration=integration,
        verified=conversation.is_verified,
    )
    return conversation


class _Started:
    """A turn started somewhere; ``join`` waits (at most ``timeout``) for it to finish."""

    def __init__(self) -> None:
        self.done = threading.Event()

    def join(self, timeout: float | None = None) -> None:
        self.done.wait(timeout)


# Tasks started on the server's loop, kept referenced until they finish.
_tasks: set[asyncio.Task[None]] = set()


def _server_loop() -> asyncio.AbstractEventLoop | None:
    """The ASGI server's event loop when this sync view runs under it (asgiref records it for
    the thread), else ``None`` (WSGI, tests, commands)."""
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    pid = getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None)
    if loop is not None and pid == os.getpid() and loop.is_running():
        return cast(asyncio.AbstractEventLoop, loop)
    return None


def _run_turns(
    conversation_id: str, *, token: str | None = None, stamp: str | None = None
) -> _Started:
    """The engine's work for the conversation, started so the request can stop waiting while
    the turn goes on. ``token``: the turn lock the message's admission took (``turns.gate``).

    Under the ASGI server the work runs as a task on the server's own loop, as the chat
    socket's turns do: a second event loop in the process would leave the engine's per-loop
    state (the hub, channel-layer connections) behind when it ends. Elsewhere (WSGI, tests)
    it runs on a thread of its own with its own loop and database connection."""
    from conversations.turns.engine import process_conversation

    started = _Started()

    async def work() -> None:
        try:
            await process_conversation(conversation_id, token=token, stamp=stamp)
        finally:
            started.done.set()

    loop = _server_loop()
    if loop is not None:

        def start() -> None:
            task = loop.create_task(work())
            _tasks.add(task)
            task.add_done_callback(_tasks.discard)

        # A fresh context: this request's would route the turn's database steps to this very
        # thread (asgiref's thread-sensitive context), which is blocked waiting for them.
        loop.call_soon_threadsafe(start, context=contextvars.Context())
        return started

    def target() -> None:
        try:
            async_to_sync(work)()
        except Exception:
            logger.exception("headless_turn_failed", conversation_id=conversation_id)
        finally:
            connections.close_all()

    threading.Thread(target=target, name=f"turn-{conversation_id[:8]}", daemon=True).start()
    return started


def message_send(
    *, conversation: Conversation, content: str, client_id: str | None, wait: float
) -> Reply:
    """Store the customer's message, run the turn, and return the reply if it settles within
    ``wait`` seconds (else ``status="running"``). A resend with the same ``client_id`` runs
    nothing again and returns the first message's reply."""
    conversation_id = str(conversation.pk)
    with transaction.atomic():
        received, admission = customer_message_receive(
            conversation_id, content, client_id or f"api-{uuid.uuid4().hex}"
        )
    deadline = time.monotonic() + wait
    if received.created and admission.token is not None:
        # Otherwise another runner holds the conversation and takes this message too.
        _run_turns(conversation_id, token=admission.token, stamp=admission.stamp).join(timeout=wait)
    return reply_wait(message=received.message, deadline=deadline)


def reply_wait(*, message: Message, deadline: float) -> Reply:
    reply = reply_for(message=message)
    while reply.status == RUNNING and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        reply = reply_for(message=message)
    return reply


def reply_for(*, message: Message) -> Reply:
    """Where the turn of ``message`` stands, and what followed it up to the next customer
    message."""
    turn = Turn.objects.filter(user_message=message).only("status").first()
    following = Message.objects.filter(conversation_id=message.conversation_id, seq__gt=message.seq)
    next_seq = (
        following.filter(role=Message.Role.USER, kind=Message.Kind.MESSAGE)
        .order_by("seq")
        .values_list("seq", flat=True)
        .first()
    )
    replies = following.exclude(role=Message.Role.USER).order_by("seq")
    if next_seq is not None:
        replies = replies.filter(seq__lt=next_seq)
    pending = list(_pending(message.conversation_id))
    # No turn yet: queued behind a pending approval ("waiting"), or about to be taken.
    status = turn.status if turn is not None else (WAITING if pending else RUNNING)
    return Reply(
        status=status, message=message, replies=list(replies[:200]), pending_interrupts=pending
    )


def _pending(conversation_id: Any) -> Any:
    from django.utils import timezone

    return Interrupt.objects.filter(
        conversation_id=conversation_id,
        status=Interrupt.Status.PENDING,
        expires_at__gt=timezone.now(),
    ).order_by("created_at")


@dataclass
class Decision:
    interrupt: Interrupt
    replies: list[Message]
    state: str


def interrupt_decide_for_program(
    *,
    conversation: Conversation,
    interrupt_id: str,
    approve: bool,
    arguments_hash: str | None,
    user: User,
    may_decide_staff: bool,
    wait: float,
) -> Decision:
    """A decision from the program that owns the conversation (its customer's approvals) or
    from staff credentials (``may_decide_staff``: approvals that wait for staff). The approved
    call runs once, by the same path as a staff decision, and the request waits up to
    ``wait`` seconds for what follows."""
    interrupt = (
        Interrupt.objects.filter(pk=interrupt_id, conversation=conversation)
        .select_related("conversation")
        .first()
    )
    if interrupt is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such approval request.")
    if interrupt.approver == Interrupt.Approver.STAFF and not may_decide_staff:
        raise ApplicationError(
            ErrorCode.PERMISSION_DENIED,
            "This action waits for staff: decide it with a key that has the 'approvals' scope "
            "and a role allowed to approve.",
        )
    if (
        approve
        and interrupt.approver == Interrupt.Approver.USER
        and not interrupt.conversation.is_verified
    ):
        raise ApplicationError(
            ErrorCode.VERIFICATION_REQUIRED,
            "Only a verified customer's conversation can approve actions: create it with "
            "`customer`.",
        )
    after = Conversation.objects.filter(pk=conversation.pk).values_list("last_seq", flat=True)[0]
    deadline = time.monotonic() + wait
    interrupt = interrupt_decide(
        interrupt_id=interrupt.pk,
        approve=approve,
        source="api",
        user=user,
        expected_hash=arguments_hash,
        conversation_id=conversation.pk,
    )
    # interrupt_decide queued the continuation (run at once by the immediate job backend);
    # a runner here too makes the wait short under a job worker. The turn lock and the
    # call's claim keep it to one run.
    _run_turns(str(conversation.pk)).join(timeout=wait)
    while not _settled(interrupt) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    replies = list(
        Message.objects.filter(conversation_id=conversation.pk, seq__gt=after)
        .exclude(role=Message.Role.USER)
        .order_by("seq")[:200]
    )
    interrupt.refresh_from_db()
    state = Conversation.objects.filter(pk=conversation.pk).values_list("state", flat=True)[0]
    return Decision(interrupt=interrupt, replies=replies, state=state)


def _settled(interrupt: Interrupt) -> bool:
    """The decided call ran (or was dropped) and its turn moved on or paused again."""
    call_status = ToolCall.objects.filter(pk=interrupt.tool_call_id).values_list(
        "status", flat=True
    )[0]
    if call_status in (ToolCall.Status.PENDING, ToolCall.Status.RUNNING):
        return False
    turn_status = Turn.objects.filter(pk=interrupt.turn_id).values_list("status", flat=True)[0]
    if turn_status == Turn.Status.RUNNING:
        return False
    if turn_status == Turn.Status.AWAITING_APPROVAL:
        return _pending(interrupt.conversation_id).exclude(pk=interrupt.pk).exists()
    return True
