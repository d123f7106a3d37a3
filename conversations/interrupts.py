"""Interrupts: consequential calls waiting for a decision (SPEC §6).

An interrupt is bound to its call by a hash of the operation and the exact arguments; a decision
is a conditional update from ``pending`` (double clicks, two tabs, two processes: one wins, the
rest are told it is already decided); expiry is applied lazily whenever an interrupt is read,
and by the scheduler's ``interrupts_expire`` job — no timer in the web process.

Every change (opened, edited, decided, expired) is announced by ``interrupt_changed`` after the
transaction commits; the staff queue listens (escalations/signals.py), this module does not
know who does.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

import structlog
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from analytics.models import EventType
from analytics.services import event_record
from config.errors import ApplicationError, ErrorCode, invalid_fields
from conversations.models import Interrupt, Message, ToolCall, Turn
from conversations.services import message_append
from openapi_import.models import Operation

logger = structlog.get_logger(__name__)

# Sent after commit with ``interrupt`` (the row as written) and ``change`` (one of
# ``InterruptChange``).
interrupt_changed = Signal()


class InterruptChange(StrEnum):
    OPENED = "opened"
    EDITED = "edited"
    DECIDED = "decided"
    EXPIRED = "expired"


def _announce(interrupt: Interrupt, change: InterruptChange) -> None:
    transaction.on_commit(
        lambda: interrupt_changed.send(sender=Interrupt, interrupt=interrupt, change=change)
    )


def arguments_hash(*, operation: str, arguments: dict[str, Any]) -> str:
    canonical = json.dumps(
        {"operation": operation, "arguments": arguments},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def describe_call(operation: Operation, arguments: dict[str, Any]) -> str:
    """What will be done, in plain words: 'Cancel an order (order number 1042)'."""
    what = operation.summary or operation.operation_id
    parts = []
    for name, value in arguments.items():
        if isinstance(value, dict):
            parts += [f"{k.replace('_', ' ')} {v}" for k, v in value.items() if v not in ("", None)]
        elif value not in ("", None):
            parts.append(f"{name.replace('_', ' ')} {value}")
    return f"{what} ({', '.join(parts)})" if parts else what


def interrupt_frame_payload(interrupt: Interrupt) -> dict[str, Any]:
    return {
        "interrupt_id": str(interrupt.pk),
        "operation": interrupt.operation_name,
        "arguments": interrupt.arguments,
        "arguments_hash": interrupt.arguments_hash,
        "summary": interrupt.summary,
        "approver": interrupt.approver,
        "expires_at": interrupt.expires_at.isoformat(),
    }


def resolved_frame_payload(interrupt: Interrupt, *, decision: str, by: str) -> dict[str, Any]:
    """The ``interrupt_resolved`` frame: with the arguments as decided, so that when staff
    corrected them (45 → 40) the customer's card shows what was approved and executed."""
    return {
        "interrupt_id": str(interrupt.pk),
        "decision": decision,
        "by": by,
        "summary": interrupt.summary,
        "arguments": interrupt.arguments,
        "arguments_hash": interrupt.arguments_hash,
        "edited": interrupt.edited,
    }


def interrupt_create(
    *,
    turn: Turn,
    tool_call: ToolCall,
    operation: Operation,
    approver: str,
    policy_reason: str = "",
    approval_rule: dict[str, Any] | None = None,
) -> Interrupt:
    """Open the interrupt for a call; ``approval_rule`` is the operation's rule that chose the
    approver (recorded as it stood, since staff may change the operation's rules later)."""
    with transaction.atomic():
        interrupt = Interrupt.objects.create(
            conversation_id=turn.conversation_id,
            turn=turn,
            tool_call=tool_call,
            operation=operation,
            operation_name=operation.operation_id,
            arguments=tool_call.arguments,
            arguments_hash=arguments_hash(
                operation=operation.operation_id, arguments=tool_call.arguments
            ),
            summary=describe_call(operation, tool_call.arguments),
            approver=approver,
            policy_reason=policy_reason,
            approval_rule=approval_rule or {},
            expires_at=timezone.now() + timedelta(seconds=settings.INTERRUPT_TTL_SECONDS),
        )
        content = (
            "This needs your approval."
            if approver == Interrupt.Approver.USER
            else "This waits for a member of staff to approve it."
        )
        message_append(
            conversation_id=turn.conversation_id,
            kind=Message.Kind.INTERRUPT,
            role=Message.Role.SYSTEM,
            content=content,
            turn=turn,
            payload={"frame": interrupt_frame_payload(interrupt)},
        )
        event_record(
            type=EventType.INTERRUPT_CREATED,
            conversation_id=turn.conversation_id,
            operation=operation.operation_id,
            outcome=approver,
            data={"interrupt_id": str(interrupt.pk), "policy_reason": policy_reason},
        )
        _announce(interrupt, InterruptChange.OPENED)
    logger.info(
        "interrupt_created",
        interrupt_id=str(interrupt.pk),
        operation=operation.operation_id,
        approver=approver,
    )
    return interrupt


def expire_one(interrupt: Interrupt) -> bool:
    """Mark one pending, overdue interrupt expired (once, whoever gets there first)."""
    now = timezone.now()
    changed = Interrupt.objects.filter(
        pk=interrupt.pk, status=Interrupt.Status.PENDING, expires_at__lte=now
    ).update(status=Interrupt.Status.EXPIRED, decided_at=now, decision_source="expiry")
    if not changed:
        return False
    interrupt.status = Interrupt.Status.EXPIRED
    message_append(
        conversation_id=interrupt.conversation_id,
        kind=Message.Kind.INTERRUPT_EXPIRED,
        role=Message.Role.SYSTEM,
        content="This request expired before it was approved. Ask again to retry.",
        turn=interrupt.turn,
        payload={"frame": {"interrupt_id": str(interrupt.pk), "summary": interrupt.summary}},
    )
    event_record(
        type=EventType.INTERRUPT_EXPIRED,
        conversation_id=interrupt.conversation_id,
        operation=interrupt.operation_name,
        latency_ms=(now - interrupt.created_at).total_seconds() * 1000,
        data={"interrupt_id": str(interrupt.pk)},
    )
    _announce(interrupt, InterruptChange.EXPIRED)
    logger.info("interrupt_expired", interrupt_id=str(interrupt.pk))
    return True


def interrupts_expire_due(*, conversation_id: UUID | str | None = None) -> int:
    due = Interrupt.objects.filter(
        status=Interrupt.Status.PENDING, expires_at__lte=timezone.now()
    ).select_related("turn")
    if conversation_id is not None:
        due = due.filter(conversation_id=conversation_id)
    return sum(expire_one(interrupt) for interrupt in due)


def interrupt_decide(
    *,
    interrupt_id: UUID | str,
    approve: bool,
    source: str,
    user: User | None = None,
    expected_hash: str | None = None,
    conversation_id: UUID | str | None = None,
) -> Interrupt:
    """Approve or reject. Raises ``interrupt_expired``, ``interrupt_already_decided``,
    ``arguments_mismatch``, ``permission_denied`` or ``not_found``; a repeat of the same
    decision (a double click) returns the interrupt unchanged."""
    try:
        interrupt = Interrupt.objects.select_related("turn", "operation", "conversation").get(
            pk=interrupt_id
        )
    except (Interrupt.DoesNotExist, ValueError, TypeError, DjangoValidationError) as exc:
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such approval request.") from exc
    if conversation_id is not None and str(interrupt.conversation_id) != str(conversation_id):
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such approval request.")
    if source == "customer" and interrupt.approver != Interrupt.Approver.USER:
        raise ApplicationError(
            ErrorCode.PERMISSION_DENIED, "This action waits for a member of staff."
        )
    if interrupt.status == Interrupt.Status.PENDING and interrupt.expires_at <= timezone.now():
        expire_one(interrupt)
    if interrupt.status == Interrupt.Status.EXPIRED:
        raise ApplicationError(
            ErrorCode.INTERRUPT_EXPIRED,
            "This approval request expired. Ask again to retry with fresh details.",
            details={"interrupt_id": str(interrupt.pk)},
        )
    wanted = Interrupt.Status.APPROVED if approve else Interrupt.Status.REJECTED
    if interrupt.status != Interrupt.Status.PENDING:
        if interrupt.status == wanted:
            return interrupt
        raise ApplicationError(
            ErrorCode.INTERRUPT_ALREADY_DECIDED,
            f"This request was already {interrupt.status}.",
            details={"status": interrupt.status},
        )
    if approve and source == "customer":
        _check_customer_may_approve(interrupt)
    if approve and expected_hash != interrupt.arguments_hash:
        raise ApplicationError(
            ErrorCode.ARGUMENTS_MISMATCH,
            "The approval does not match the request's arguments; review it again.",
        )
    now = timezone.now()
    with transaction.atomic():
        won = Interrupt.objects.filter(pk=interrupt.pk, status=Interrupt.Status.PENDING).update(
            status=wanted, decided_at=now, decided_by=user, decision_source=source
        )
        if not won:
            interrupt.refresh_from_db()
            if interrupt.status == wanted:
                return interrupt
            raise ApplicationError(
                ErrorCode.INTERRUPT_ALREADY_DECIDED, f"This request was already {interrupt.status}."
            )
        interrupt.status, interrupt.decided_at, interrupt.decision_source = wanted, now, source
        decision = "approved" if approve else "rejected"
        by = "customer" if source == "customer" else "staff"
        message_append(
            conversation_id=interrupt.conversation_id,
            kind=Message.Kind.INTERRUPT_RESOLVED,
            role=Message.Role.SYSTEM,
            content=f"{interrupt.summary}: {decision}.",
            turn=interrupt.turn,
            payload={"frame": resolved_frame_payload(interrupt, decision=decision, by=by)},
        )
        event_record(
            type=EventType.INTERRUPT_APPROVED if approve else EventType.INTERRUPT_REJECTED,
            conversation_id=interrupt.conversation_id,
            operation=interrupt.operation_name,
            outcome=by,
            latency_ms=(now - interrupt.created_at).total_seconds() * 1000,
            data={"interrupt_id": str(interrupt.pk), "approver": interrupt.approver},
        )
        _announce(interrupt, InterruptChange.DECIDED)
        if source != "customer":
            # Staff and API decisions do not come through a chat socket: a job continues the
            # conversation (the database backend survives a restart of the web process).
            transaction.on_commit(lambda: _continue_later(interrupt.conversation_id))
    logger.info("interrupt_decided", interrupt_id=str(interrupt.pk), decision=decision, by=by)
    return interrupt


def _check_customer_may_approve(interrupt: Interrupt) -> None:
    """A customer's approval counts only from the verified customer of the conversation
    (docs/identity.md): whoever merely holds an anonymous chat cannot approve an action."""
    from conversations.agent.policy import needs_verified_customer

    operation = interrupt.operation
    if operation is None or not needs_verified_customer(operation):
        return
    if not interrupt.conversation.is_verified:
        logger.warning("interrupt_approval_unverified", interrupt_id=str(interrupt.pk))
        raise ApplicationError(
            ErrorCode.VERIFICATION_REQUIRED,
            "Only the verified customer can approve this. Verify first, or ask for a human.",
        )


def _continue_later(conversation_id: UUID | str) -> None:
    from conversations.tasks import continue_conversation

    continue_conversation.enqueue(str(conversation_id))


def interrupt_decide_by_customer(
    *,
    conversation_id: UUID | str,
    interrupt_id: str,
    approve: bool,
    arguments_hash: str | None = None,
) -> Interrupt:
    return interrupt_decide(
        interrupt_id=interrupt_id,
        approve=approve,
        source="customer",
        expected_hash=arguments_hash,
        conversation_id=conversation_id,
    )


def interrupt_edit_arguments(
    *, interrupt: Interrupt, arguments: dict[str, Any], user: User
) -> Interrupt:
    """Staff correct the arguments before approving: re-validated, re-hashed, recorded."""
    from conversations.tools import ToolArgumentError, validate_arguments

    if interrupt.status != Interrupt.Status.PENDING:
        raise ApplicationError(ErrorCode.INTERRUPT_ALREADY_DECIDED, "Only pending requests.")
    operation = interrupt.operation
    if operation is None:
        raise ApplicationError(ErrorCode.CONFLICT, "The operation no longer exists.")
    try:
        validate_arguments(operation, arguments)
    except ToolArgumentError as exc:
        raise invalid_fields(
            f"The arguments do not fit the operation: {exc}", {"arguments": str(exc)}
        ) from exc
    with transaction.atomic():
        interrupt.arguments = arguments
        interrupt.arguments_hash = arguments_hash(
            operation=operation.operation_id, arguments=arguments
        )
        interrupt.summary = describe_call(operation, arguments)
        interrupt.edited = True
        interrupt.save(update_fields=["arguments", "arguments_hash", "summary", "edited"])
        ToolCall.objects.filter(pk=interrupt.tool_call_id).update(arguments=arguments)
        _announce(interrupt, InterruptChange.EDITED)
    logger.info("interrupt_arguments_edited", interrupt_id=str(interrupt.pk), user_id=user.pk)
    return interrupt


def remind_pending_decision(*, conversation_id: UUID | str) -> bool:
    """A message that arrives while an action waits is kept for later, and the customer is
    told why nothing happens yet."""
    pending = (
        Interrupt.objects.filter(
            conversation_id=conversation_id,
            status=Interrupt.Status.PENDING,
            expires_at__gt=timezone.now(),
        )
        .order_by("created_at")
        .first()
    )
    if pending is None:
        return False
    if pending.approver == Interrupt.Approver.USER:
        text = (
            f"First, please approve or reject: {pending.summary}. I'll read your new "
            "message right after."
        )
    else:
        text = (
            f"{pending.summary} is waiting for a member of staff. I'll read your new "
            "message once they have decided."
        )
    message_append(conversation_id=conversation_id, role=Message.Role.SYSTEM, content=text)
    return True
