"""Client frames of the chat protocol: validation and dispatch (docs/websocket-protocol.md).

Every bad frame raises an :class:`ApplicationError` whose code the consumer sends back in an
``error`` frame; nothing is stored and no model is called for it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async
from django.conf import settings
from prometheus_client import Gauge

from config import ratelimit
from config.errors import ApplicationError, ErrorCode
from conversations import socket_limits

if TYPE_CHECKING:
    from conversations.consumers import ChatConsumer
    from conversations.services import Received
    from conversations.turns.gate import Admission

CLIENT_TYPES = ("message", "approval", "escalate", "resume", "ping", "identify")
OPEN_SOCKETS = Gauge("actiondesk_open_sockets", "Open chat WebSockets in this process")


def socket_opened() -> None:
    OPEN_SOCKETS.inc()


def socket_closed(*, accepted: bool) -> None:
    if accepted:
        OPEN_SOCKETS.dec()


def parse_frame(text_data: str | None, bytes_data: bytes | None) -> dict[str, Any]:
    if text_data is None:
        raise ApplicationError(ErrorCode.INVALID_FRAME, "Send JSON text frames, not binary.")
    if len(text_data.encode()) > settings.CHAT_MAX_FRAME_BYTES:
        raise ApplicationError(
            ErrorCode.FRAME_TOO_LARGE,
            f"Frames may be at most {settings.CHAT_MAX_FRAME_BYTES // 1024} KiB.",
        )
    try:
        frame = json.loads(text_data)
    except ValueError as exc:
        raise ApplicationError(ErrorCode.MALFORMED_JSON, "The frame is not valid JSON.") from exc
    if not isinstance(frame, dict):
        raise ApplicationError(ErrorCode.INVALID_FRAME, "A frame must be a JSON object.")
    kind = frame.get("type")
    if kind not in CLIENT_TYPES:
        raise ApplicationError(
            ErrorCode.UNKNOWN_TYPE,
            f"Unknown frame type {kind!r}; expected one of {', '.join(CLIENT_TYPES)}.",
        )
    return frame


def _client_id(frame: dict[str, Any]) -> str:
    client_id = frame.get("client_id")
    if not isinstance(client_id, str) or not 1 <= len(client_id) <= 64:
        raise ApplicationError(
            ErrorCode.INVALID_FRAME, "A message needs a client_id: a string of 1 to 64 characters."
        )
    return client_id


def validate_content(content: Any) -> str:
    if not isinstance(content, str):
        raise ApplicationError(ErrorCode.INVALID_FRAME, "content must be a string.")
    if len(content) > settings.CHAT_MAX_MESSAGE_CHARS:
        raise ApplicationError(
            ErrorCode.MESSAGE_TOO_LONG,
            f"Messages may be at most {settings.CHAT_MAX_MESSAGE_CHARS:,} characters.",
        )
    if not content.strip():
        raise ApplicationError(ErrorCode.EMPTY_MESSAGE, "The message is empty.")
    return content


def check_rate(verdict: ratelimit.Verdict) -> None:
    if not verdict.allowed:
        raise ApplicationError(
            ErrorCode.RATE_LIMITED,
            f"Too many messages; wait {verdict.retry_after} s.",
            retry_after=verdict.retry_after,
        )


async def dispatch(consumer: ChatConsumer, frame: dict[str, Any]) -> None:
    handler = _HANDLERS[frame["type"]]
    await handler(consumer, frame)


async def _ping(consumer: ChatConsumer, frame: dict[str, Any]) -> None:
    await consumer.send_json({"type": "pong"})


def _receive(
    conversation_id: str, content: str, client_id: str, client: socket_limits.Client | None = None
) -> tuple[Received, Admission]:
    """The rate limits (the conversation's, and the IP's and visitor's), the turn lock and the
    stored message: one Redis round trip for the conversation's limit and lock, one for the
    IP's and visitor's, and one transaction. The lock is let go again if nothing is to run."""
    from conversations.interrupts import remind_pending_decision
    from conversations.services import user_message_store
    from conversations.turns import gate

    if client is not None:
        # Per IP and per visitor too: a fresh conversation is no fresh message budget.
        refusal = socket_limits.message_check(client)
        if refusal is not None:
            raise ApplicationError(
                ErrorCode.RATE_LIMITED, refusal.message, retry_after=refusal.retry_after
            )
    admission = gate.admit(conversation_id=conversation_id)
    check_rate(admission.verdict)
    try:
        received = user_message_store(
            conversation_id=conversation_id, content=content, client_id=client_id
        )
        if received.decisions_pending:
            remind_pending_decision(conversation_id=conversation_id)
    except BaseException:
        if admission.token is not None:
            gate.lock_release(conversation_id=conversation_id, token=admission.token)
        raise
    if not received.created and admission.token is not None:
        gate.lock_release(conversation_id=conversation_id, token=admission.token)
    return received, admission


async def _message(consumer: ChatConsumer, frame: dict[str, Any]) -> None:
    from conversations.realtime import Outbox, message_frame
    from conversations.turns.engine import schedule_turns, step
    from conversations.turns.steps import events_store

    client_id = _client_id(frame)
    content = validate_content(frame.get("content"))
    # One trip to the ORM thread: the rate check and the turn lock, the stored message and
    # its frame. The frame goes out with the turn's start (one channel-layer message for
    # both), and the message's event is stored with the turn's (one insert at its end).
    outbox = Outbox()
    received, admission = await step(_receive, flush=False, outbox=outbox, store_events=False)(
        consumer.conversation_id, content, client_id, getattr(consumer, "client", None)
    )
    if not received.created:
        # A resend after a reconnect: acknowledge with the stored frame, run nothing again.
        await outbox.flush()
        await consumer.send_json(message_frame(received.message))
        return
    if admission.token is None:
        # Another runner holds the conversation and was woken to take this message too.
        await step(events_store, outbox=outbox)()
        return
    schedule_turns(consumer.conversation_id, outbox, token=admission.token, stamp=admission.stamp)


async def _resume(consumer: ChatConsumer, frame: dict[str, Any]) -> None:
    from conversations.realtime import message_frame
    from conversations.selectors import messages_after

    after = frame.get("after", 0)
    if isinstance(after, bool) or not isinstance(after, int) or after < 0:
        raise ApplicationError(ErrorCode.INVALID_FRAME, "after must be a sequence number ≥ 0.")
    last = after
    while True:
        batch = await database_sync_to_async(messages_after)(
            conversation_id=consumer.conversation_id, after=last
        )
        for message in batch:
            await consumer.send_json(message_frame(message))
            last = message.seq
        if len(batch) < 500:
            break
    await consumer.send_json({"type": "resumed", "last_seq": last})


async def _escalate(consumer: ChatConsumer, frame: dict[str, Any]) -> None:
    from conversations.services import handoff_request

    reason = frame.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 500:
        raise ApplicationError(ErrorCode.INVALID_FRAME, "reason must be a short string.")
    await database_sync_to_async(handoff_request)(
        conversation_id=consumer.conversation_id,
        trigger="customer_button",
        reason=reason.strip() or "The customer asked for a human.",
    )


async def _approval(consumer: ChatConsumer, frame: dict[str, Any]) -> None:
    from conversations.interrupts import interrupt_decide_by_customer
    from conversations.turns.engine import schedule_turns

    interrupt_id = frame.get("interrupt_id")
    decision = frame.get("decision")
    if not isinstance(interrupt_id, str) or decision not in ("approve", "reject"):
        raise ApplicationError(
            ErrorCode.INVALID_FRAME,
            'An approval needs interrupt_id and decision ("approve" or "reject").',
        )
    expected = frame.get("arguments_hash")
    try:
        await database_sync_to_async(interrupt_decide_by_customer)(
            conversation_id=consumer.conversation_id,
            interrupt_id=interrupt_id,
            approve=decision == "approve",
            arguments_hash=expected if isinstance(expected, str) else None,
        )
    except ApplicationError as exc:
        if exc.code != ErrorCode.INTERRUPT_EXPIRED:
            raise
        # A late answer: say so in the protocol's own frame, with the offer to ask again.
        await consumer.send_json(
            {"type": "interrupt_expired", "interrupt_id": interrupt_id, "content": exc.message}
        )
    schedule_turns(consumer.conversation_id)


async def _identify(consumer: ChatConsumer, frame: dict[str, Any]) -> None:
    """A signed identity from the business's site (docs/identity.md). Refused tokens get an
    ``error`` frame (identity_invalid, identity_expired, identity_replayed, identity_conflict)
    and change nothing."""
    from conversations.identity import conversation_identify_with_token, identity_frame

    token = frame.get("token")
    if not isinstance(token, str) or not token:
        raise ApplicationError(ErrorCode.INVALID_FRAME, "identify needs a token (a string).")
    conversation = await database_sync_to_async(conversation_identify_with_token)(
        conversation_id=consumer.conversation_id, token=token
    )
    await consumer.send_json({"type": "identified", **identity_frame(conversation)})


_HANDLERS = {
    "identify": _identify,
    "ping": _ping,
    "message": _message,
    "resume": _resume,
    "escalate": _escalate,
    "approval": _approval,
}
