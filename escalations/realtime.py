"""Group name and frames of the staff stream ``/ws/escalations/`` (docs/escalations.md).

Every frame is built from stored rows inside the writing transaction and sent after it commits,
through the channel layer (Redis in production), so a staff socket on any server process sees
what any other process wrote.
"""

from __future__ import annotations

from typing import Any

import structlog
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth import HASH_SESSION_KEY
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from config.pii import mask_text
from conversations.interrupts import InterruptChange
from conversations.models import Interrupt
from escalations.models import Escalation

logger = structlog.get_logger(__name__)

STAFF_GROUP = "escalations.staff"
EVENT_TYPE = "escalations.frame"


def staff_name(user: AbstractBaseUser | None) -> str:
    if user is None:
        return ""
    full = getattr(user, "get_full_name", lambda: "")()
    return str(full or user.get_username())


def handoff_url(escalation_id: int) -> str:
    try:
        return reverse("admin:escalations_handoff", args=[escalation_id])
    except NoReverseMatch:
        return f"/admin/escalations/handoff/{escalation_id}/"


def escalation_summary(escalation: Escalation) -> dict[str, Any]:
    """One row of the queue. Text from the customer is masked: it travels to every agent."""
    claimer = escalation.claimed_by
    summary = escalation.packet.get("summary", {}) if isinstance(escalation.packet, dict) else {}
    last = summary.get("last_customer_message") or summary.get("first_customer_message") or {}
    return {
        "id": escalation.pk,
        "conversation_id": str(escalation.conversation_id),
        "status": escalation.status,
        "priority": escalation.priority,
        "priority_reason": escalation.priority_reason,
        "trigger": escalation.trigger,
        "reason": escalation.reason,
        "title": summary.get("title") or "",
        "preview": mask_text(str(last.get("content", "")))[:200],
        "created_at": escalation.created_at.isoformat(),
        "claimed_by": {"id": claimer.pk, "name": staff_name(claimer)} if claimer else None,
        "claimed_at": escalation.claimed_at.isoformat() if escalation.claimed_at else None,
        "url": handoff_url(escalation.pk),
    }


def interrupt_summary(interrupt: Interrupt) -> dict[str, Any]:
    return {
        "id": str(interrupt.pk),
        "conversation_id": str(interrupt.conversation_id),
        "operation": interrupt.operation_name,
        "summary": interrupt.summary,
        "arguments_hash": interrupt.arguments_hash,
        "policy_reason": interrupt.policy_reason,
        "edited": interrupt.edited,
        "expires_at": interrupt.expires_at.isoformat(),
        "created_at": interrupt.created_at.isoformat(),
    }


def interrupt_frame(change: InterruptChange, interrupt: Interrupt) -> dict[str, Any]:
    """``interrupt_pending`` when a staff approval opens or its arguments change (the row, to
    add or replace), ``interrupt_settled`` when it is decided or expires (to remove)."""
    if change in (InterruptChange.OPENED, InterruptChange.EDITED):
        return {"type": "interrupt_pending", "interrupt": interrupt_summary(interrupt)}
    return {
        "type": "interrupt_settled",
        "interrupt_id": str(interrupt.pk),
        "status": interrupt.status,
    }


def queue_frame(
    escalations: list[Escalation], interrupts: list[Interrupt], *, me: dict[str, Any]
) -> dict[str, Any]:
    return {
        "type": "queue",
        "escalations": [escalation_summary(e) for e in escalations],
        "interrupts": [interrupt_summary(i) for i in interrupts],
        "me": me,
        "server_time": timezone.now().isoformat(),
    }


def escalation_frame(kind: str, escalation: Escalation) -> dict[str, Any]:
    """``escalation_created`` / ``_claimed`` / ``_resolved`` / ``_handed_back`` /
    ``_cancelled`` / ``_updated``."""
    return {"type": f"escalation_{kind}", "escalation": escalation_summary(escalation)}


async def send_to_staff(frame: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(
            STAFF_GROUP, {"type": EVENT_TYPE, "group": STAFF_GROUP, "frame": frame}
        )


def _send(frame: dict[str, Any]) -> None:
    try:
        async_to_sync(send_to_staff)(frame)
    except Exception:
        # The write stands; staff pages resync from the snapshot when they reconnect.
        logger.exception("escalation_broadcast_failed", frame_type=frame.get("type"))


def broadcast(frame: dict[str, Any]) -> None:
    """Send now: for callers already past the commit (``interrupt_changed`` receivers)."""
    _send(frame)


def broadcast_on_commit(frame: dict[str, Any]) -> None:
    """Send after the transaction commits, so no agent sees a change that was rolled back."""
    transaction.on_commit(lambda: _send(frame))


# Sessions: one group per staff member, so that logout, deactivation, a password change or a
# lost role reach that member's sockets in every process (docs/escalations.md).
SESSION_EVENT_TYPE = "staff.session_ended"


def staff_user_group(user_id: int) -> str:
    """The member's sockets (the staff stream, and chat sockets opened by a signed-in user)."""
    return f"staff_user.{user_id}"


def scope_session(scope: dict[str, Any]) -> tuple[str | None, str]:
    """A socket's session key and the auth hash its session held at connect (sync: the
    session may load from the store)."""
    session = scope.get("session")
    if session is None:
        return None, ""
    return session.session_key, str(session.get(HASH_SESSION_KEY, ""))


async def send_session_ended(user_id: int, *, session_key: str | None, reason: str) -> None:
    layer = get_channel_layer()
    if layer is not None:
        group = staff_user_group(user_id)
        await layer.group_send(
            group,
            {
                "type": SESSION_EVENT_TYPE,
                "group": group,
                "session_key": session_key,
                "reason": reason,
            },
        )
