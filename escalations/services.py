"""Escalation writes (SPEC §7): opening one with its packet, the atomic claim, staff messages,
resolving, handing back to the AI, cancelling, and the packet's late model assessment.

Each write and the staff-stream frame it causes live in one function; frames go out after the
transaction commits (``escalations.realtime.broadcast_on_commit``), notifications are queued as
jobs after commit, so neither can fail or undo the escalation.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import structlog
from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from analytics.models import EventType
from analytics.services import event_record
from config.errors import ApplicationError, ErrorCode
from config.pii import mask_text
from conversations.llm.types import LLMConfigurationError, LLMError
from conversations.models import Conversation, Message
from conversations.services import (
    conversation_context_update,
    conversation_transition,
    handoff_request,
    message_append,
)
from escalations import packet as packets
from escalations.models import Escalation
from escalations.realtime import (
    broadcast_on_commit,
    escalation_frame,
    send_session_ended,
    staff_name,
)
from escalations.selectors import (
    escalation_open_for_conversation,
    escalations_open_on_closed_conversations,
    packet_facts_get,
    user_is_supervisor,
)

logger = structlog.get_logger(__name__)

Status = Escalation.Status
State = Conversation.State


def _ms(start: datetime | None, end: datetime) -> float | None:
    return (end - start).total_seconds() * 1000 if start else None


def public_name(user: User) -> str:
    """How the customer sees a member of staff: their display name (first name, else full
    name), never their username, which is a login, not a name."""
    return user.first_name.strip() or user.get_full_name().strip() or "Support"


def _backend_for(conversation: Conversation) -> tuple[str | None, str]:
    """The backend that would answer this conversation, and its kind."""
    from conversations.agent.backends import get_registry

    agent = conversation.current_agent
    name = agent.backend if agent is not None and agent.backend else None
    try:
        registry = get_registry()
        return name, registry.backend(name or registry.primary).kind
    except Exception:
        # A misconfigured backend must not stop the handoff; the assessment will say so.
        logger.warning("escalation_backend_unknown", backend=name, exc_info=True)
        return name, "unconfigured"


# --- Opening -----------------------------------------------------------------------------------


def escalation_open(
    *, conversation: Conversation, trigger: str, reason: str, actor: User | None = None
) -> Escalation:
    """Open the conversation's escalation (``handoff_request`` calls this once the conversation
    is ``escalated`` and the customer has been told). Returns the open one if there already is
    one: two triggers racing end with a single escalation."""
    existing = escalation_open_for_conversation(conversation_id=conversation.pk)
    if existing is not None:
        return existing
    _, kind = _backend_for(conversation)
    try:
        packet, priority, why = _packet(conversation, trigger=trigger, reason=reason, kind=kind)
    except Exception:
        # The customer was told a human is coming: the escalation opens even if its packet
        # could not be built (staff still have the conversation's timeline).
        logger.exception("escalation_packet_failed", conversation_id=str(conversation.pk))
        kind = "offline"
        packet = {"error": "The handoff packet could not be built; read the timeline."}
        priority, why = Escalation.Priority.NORMAL, ""
    webhook = bool(settings.ESCALATION_WEBHOOK_URL)
    try:
        with transaction.atomic():
            escalation = Escalation.objects.create(
                conversation=conversation,
                trigger=trigger[:40],
                reason=mask_text(reason)[:500],
                priority=priority,
                priority_reason=why,
                packet=packet,
                opened_by=actor,
                notification_status=(
                    Escalation.Notification.PENDING
                    if webhook
                    else Escalation.Notification.NOT_CONFIGURED
                ),
            )
            event_record(
                type=EventType.ESCALATION_CREATED,
                conversation_id=conversation.pk,
                outcome=trigger,
                data={
                    "escalation_id": escalation.pk,
                    "trigger": trigger,
                    "reason": reason,
                    "priority": priority,
                },
            )
            broadcast_on_commit(escalation_frame("created", escalation))
            _follow_up_on_commit(escalation.pk, assess=kind != "offline", notify=webhook)
    except IntegrityError:
        # Another trigger opened it between our check and our insert.
        existing = escalation_open_for_conversation(conversation_id=conversation.pk)
        if existing is None:
            raise
        return existing
    logger.info(
        "escalation_opened",
        escalation_id=escalation.pk,
        conversation_id=str(conversation.pk),
        trigger=trigger,
        priority=priority,
    )
    return escalation


def _packet(
    conversation: Conversation, *, trigger: str, reason: str, kind: str
) -> tuple[dict[str, Any], str, str]:
    facts = packet_facts_get(conversation_id=conversation.pk)
    rules = packets.rules_assessment(facts, trigger=trigger)
    # The offline backend's assessment is the rules'; a real model is asked after commit, with
    # a short timeout, so the customer's request never waits for it.
    assessment = rules if kind == "offline" else {**packets.pending_assessment(), "rules": rules}
    priority, why = packets.priority_for(facts, trigger=trigger)
    built = packets.packet_build(facts, trigger=trigger, reason=reason, assessment=assessment)
    return built, priority, why


def _follow_up_on_commit(escalation_id: int, *, assess: bool, notify: bool) -> None:
    from escalations.tasks import assess_escalation, notify_escalation

    def enqueue() -> None:
        # Each job is queued on its own: a failure to queue one is logged, never raised.
        if assess:
            assess_escalation.enqueue(escalation_id)
        if notify:
            notify_escalation.enqueue(escalation_id)

    transaction.on_commit(enqueue, robust=True)


def escalation_take_over(*, conversation: Conversation, user: User) -> Escalation:
    """Staff take a conversation from the AI: hand it over, then claim it for ``user``."""
    handoff_request(
        conversation_id=conversation.pk,
        trigger="staff_takeover",
        reason=f"{staff_name(user)} took the conversation over.",
        actor=user,
    )
    escalation = escalation_open_for_conversation(conversation_id=conversation.pk)
    if escalation is None:
        raise ApplicationError(
            ErrorCode.INVALID_TRANSITION, "This conversation is closed; it cannot be taken over."
        )
    return escalation_claim(escalation=escalation, user=user)


# --- Claiming ----------------------------------------------------------------------------------


def _already_claimed(escalation: Escalation) -> ApplicationError:
    claimer = escalation.claimed_by
    name = staff_name(claimer) or "someone else"
    at = escalation.claimed_at
    when = timezone.localtime(at).strftime("%H:%M:%S") if at else "an unknown time"
    return ApplicationError(
        ErrorCode.ALREADY_CLAIMED,
        f"Claimed by {name} at {when}.",
        details={"claimed_by": name, "claimed_at": at.isoformat() if at else None},
    )


def _not_open(escalation: Escalation) -> ApplicationError:
    return ApplicationError(
        ErrorCode.INVALID_TRANSITION,
        f"This escalation is already {escalation.get_status_display().lower()}.",
        details={"status": escalation.status},
    )


def escalation_claim(*, escalation: Escalation, user: User) -> Escalation:
    """Take a waiting escalation. A conditional update decides: of two agents racing (in any
    process), one wins and the other gets ``already_claimed`` with the winner's name and time.
    Claiming again what you already hold changes nothing."""
    now = timezone.now()
    with transaction.atomic():
        won = Escalation.objects.filter(pk=escalation.pk, status=Status.WAITING).update(
            status=Status.CLAIMED, claimed_by=user, claimed_at=now, updated_at=now
        )
        current = Escalation.objects.select_related("conversation", "claimed_by").get(
            pk=escalation.pk
        )
        if not won:
            if current.status == Status.CLAIMED and current.claimed_by_id == user.pk:
                return current
            if current.status == Status.CLAIMED:
                raise _already_claimed(current)
            raise _not_open(current)
        conversation_transition(
            conversation=current.conversation,
            to_state=State.HUMAN_ACTIVE,
            reason=f"claimed by {staff_name(user)}",
            actor=user,
        )
        name = public_name(user)
        message_append(
            conversation_id=current.conversation_id,
            kind=Message.Kind.STAFF_JOINED,
            role=Message.Role.SYSTEM,
            content=f"{name} from support joined the conversation.",
            payload={"frame": {"name": name}},
        )
        event_record(
            type=EventType.ESCALATION_CLAIMED,
            conversation_id=current.conversation_id,
            outcome=current.trigger,
            latency_ms=_ms(current.created_at, now),
            data={"escalation_id": current.pk, "user_id": user.pk, "priority": current.priority},
        )
        broadcast_on_commit(escalation_frame("claimed", current))
    logger.info("escalation_claimed", escalation_id=current.pk, user_id=user.pk)
    return current


# --- The human chat and its end ------------------------------------------------------------------


def _holder_check(escalation: Escalation, user: User, *, doing: str) -> None:
    if escalation.status == Status.WAITING:
        raise ApplicationError(
            ErrorCode.INVALID_TRANSITION,
            f"Claim this escalation before you {doing}.",
            details={"status": escalation.status},
        )
    if escalation.status != Status.CLAIMED:
        raise _not_open(escalation)
    if escalation.claimed_by_id != user.pk and not user_is_supervisor(user):
        raise ApplicationError(
            ErrorCode.PERMISSION_DENIED,
            f"{staff_name(escalation.claimed_by)} holds this conversation; only they or a "
            f"supervisor can {doing}.",
        )


def _locked(escalation: Escalation) -> Escalation:
    return (
        Escalation.objects.select_for_update(of=("self",))
        .select_related("conversation", "claimed_by")
        .get(pk=escalation.pk)
    )


def escalation_message_send(*, escalation: Escalation, user: User, content: str) -> Message:
    """A message from the agent holding the conversation to the customer (a ``message`` frame
    with role ``staff`` on the customer's socket). The first one is timed."""
    if not isinstance(content, str) or not content.strip():
        raise ApplicationError(ErrorCode.EMPTY_MESSAGE, "The message is empty.")
    if len(content) > settings.CHAT_MAX_MESSAGE_CHARS:
        raise ApplicationError(
            ErrorCode.MESSAGE_TOO_LONG,
            f"Messages may be at most {settings.CHAT_MAX_MESSAGE_CHARS:,} characters.",
        )
    now = timezone.now()
    with transaction.atomic():
        current = _locked(escalation)
        _holder_check(current, user, doing="write to the customer")
        message = message_append(
            conversation_id=current.conversation_id,
            role=Message.Role.STAFF,
            content=content,
            author=user,
            payload={"frame": {"author": public_name(user)}},
        )
        first = Escalation.objects.filter(
            pk=current.pk, first_staff_message_at__isnull=True
        ).update(first_staff_message_at=now, updated_at=now)
        if first:
            event_record(
                type=EventType.STAFF_FIRST_MESSAGE,
                conversation_id=current.conversation_id,
                latency_ms=_ms(current.created_at, now),
                data={
                    "escalation_id": current.pk,
                    "user_id": user.pk,
                    "since_claim_ms": _ms(current.claimed_at, now),
                },
            )
    logger.info("staff_message_sent", escalation_id=current.pk, user_id=user.pk)
    return message


def _finish(escalation: Escalation, user: User, *, status: str) -> Escalation:
    resolving = status == Status.RESOLVED
    doing = "resolve it" if resolving else "hand it back"
    now = timezone.now()
    with transaction.atomic():
        current = _locked(escalation)
        if current.status == status:
            return current  # a double click
        _holder_check(current, user, doing=doing)
        conversation_transition(
            conversation=current.conversation,
            to_state=State.RESOLVED if resolving else State.AI_ACTIVE,
            reason=f"{'resolved' if resolving else 'handed back'} by {staff_name(user)}",
            actor=user,
        )
        current.status = status
        current.closed_by = user
        if resolving:
            current.resolved_at = now
            text = (
                f"{public_name(user)} marked this conversation as resolved. Write again any "
                "time if you need more help."
            )
        else:
            current.handed_back_at = now
            text = (
                f"You're back with the assistant: {public_name(user)} handed the conversation "
                "back. Just write to carry on."
            )
        current.save(update_fields=["status", "closed_by", "resolved_at", "handed_back_at",
                                    "updated_at"])  # fmt: skip
        message_append(
            conversation_id=current.conversation_id,
            role=Message.Role.SYSTEM,
            content=text,
            payload={"frame": {"state": State.RESOLVED if resolving else State.AI_ACTIVE}},
        )
        if not resolving:
            # A fresh start for the AI: failures before the human stepped in no longer count
            # towards the next automatic escalation.
            context = dict(current.conversation.context)
            context.update(tool_failures=0, backend_failures=0)
            conversation_context_update(conversation_id=current.conversation_id, context=context)
        event_record(
            type=EventType.ESCALATION_RESOLVED if resolving else EventType.ESCALATION_HANDED_BACK,
            conversation_id=current.conversation_id,
            outcome=current.trigger,
            latency_ms=_ms(current.created_at, now),
            data={
                "escalation_id": current.pk,
                "user_id": user.pk,
                "since_claim_ms": _ms(current.claimed_at, now),
            },
        )
        broadcast_on_commit(escalation_frame("resolved" if resolving else "handed_back", current))
    logger.info("escalation_finished", escalation_id=current.pk, status=status, user_id=user.pk)
    return current


def escalation_resolve(*, escalation: Escalation, user: User) -> Escalation:
    """The agent solved it: the conversation is ``resolved`` (a new customer message reopens
    it with the AI)."""
    return _finish(escalation, user, status=Status.RESOLVED)


def escalation_hand_back(*, escalation: Escalation, user: User) -> Escalation:
    """The AI takes the conversation again; the customer is told."""
    return _finish(escalation, user, status=Status.HANDED_BACK)


def escalation_priority_set(*, escalation: Escalation, priority: str, user: User) -> Escalation:
    if priority not in Escalation.Priority.values:
        raise ApplicationError(ErrorCode.VALIDATION_ERROR, f"Unknown priority {priority!r}.")
    with transaction.atomic():
        current = _locked(escalation)
        if current.priority == priority:
            return current
        current.priority = priority
        current.priority_reason = f"set by {staff_name(user)}"[:200]
        current.save(update_fields=["priority", "priority_reason", "updated_at"])
        broadcast_on_commit(escalation_frame("updated", current))
    logger.info("escalation_priority_set", escalation_id=current.pk, priority=priority)
    return current


def escalation_cancel(*, escalation: Escalation, reason: str) -> Escalation:
    """An open escalation whose conversation closed leaves the queue."""
    now = timezone.now()
    with transaction.atomic():
        current = _locked(escalation)
        if not current.is_open:
            return current
        current.status = Status.CANCELLED
        current.cancelled_at = now
        current.save(update_fields=["status", "cancelled_at", "updated_at"])
        broadcast_on_commit(escalation_frame("cancelled", current))
    logger.info("escalation_cancelled", escalation_id=current.pk, reason=reason)
    return current


def escalation_cancel_for_conversation(*, conversation_id: str) -> Escalation | None:
    """For the conversations app to call when a conversation closes."""
    escalation = escalation_open_for_conversation(conversation_id=conversation_id)
    if escalation is None:
        return None
    return escalation_cancel(escalation=escalation, reason="conversation closed")


def escalations_cancel_closed() -> int:
    """Cancel open escalations of closed conversations (applied lazily, whenever the queue is
    read, so no hook or timer is needed for correctness)."""
    stale = list(escalations_open_on_closed_conversations())
    for escalation in stale:
        escalation_cancel(escalation=escalation, reason="conversation closed")
    return len(stale)


# --- The model's assessment --------------------------------------------------------------------


def escalation_assess(*, escalation_id: int) -> dict[str, Any]:
    """Ask the conversation's backend for an assessment, within
    ``ESCALATION_ASSESSMENT_TIMEOUT_SECONDS``; store it (or ``unavailable``) in the packet."""
    escalation = Escalation.objects.select_related("conversation__current_agent").get(
        pk=escalation_id
    )
    current_assessment = escalation.packet.get("assessment", {})
    if current_assessment.get("status") != "pending":
        return dict(current_assessment)
    rules = current_assessment.get("rules", {})
    backend, _ = _backend_for(escalation.conversation)
    try:
        assessment = async_to_sync(packets.model_assessment)(
            escalation.packet,
            backend=backend,
            within=settings.ESCALATION_ASSESSMENT_TIMEOUT_SECONDS,
        )
    except TimeoutError:
        assessment = packets.unavailable_assessment("timeout", rules)
    except LLMError as exc:
        assessment = packets.unavailable_assessment(exc.kind.value, rules)
    except LLMConfigurationError:
        assessment = packets.unavailable_assessment("not_configured", rules)
    with transaction.atomic():
        current = _locked(escalation)
        current.packet = {**current.packet, "assessment": assessment}
        current.save(update_fields=["packet", "updated_at"])
        broadcast_on_commit(escalation_frame("updated", current))
    logger.info("escalation_assessed", escalation_id=escalation_id, status=assessment.get("status"))
    return assessment


def staff_sessions_end(
    *, user_ids: Iterable[int], reason: str, session_key: str | None = None
) -> None:
    """Tell these staff members' sockets, in every process, that their session may have ended
    (logout, deactivation, password change, lost role), after the change commits. A socket
    opened with ``session_key`` closes at once; every other socket of the user re-checks its
    session and closes unless it is still valid (docs/escalations.md, close code 4401)."""
    ids = sorted({int(pk) for pk in user_ids})
    if not ids:
        return

    def send() -> None:
        for user_id in ids:
            try:
                async_to_sync(send_session_ended)(user_id, session_key=session_key, reason=reason)
            except Exception:
                # The per-frame re-check still closes the socket on its next frame.
                logger.exception("staff_session_end_failed", user_id=user_id, reason=reason)
        logger.info("staff_sessions_ended", user_ids=ids, reason=reason)

    transaction.on_commit(send)
