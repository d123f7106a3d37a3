from __future__ import annotations

from django.conf import settings
from django.db import models


class Escalation(models.Model):
    """A conversation handed to humans (SPEC §7): it waits in the live queue, one support agent
    claims it, chats with the customer, then resolves it or hands it back to the AI.

    ``waiting`` → ``claimed`` → ``resolved`` | ``handed_back``; an open one (waiting or claimed)
    becomes ``cancelled`` when its conversation closes. At most one is open per conversation.
    """

    class Status(models.TextChoices):
        WAITING = "waiting", "Waiting"
        CLAIMED = "claimed", "Claimed"
        RESOLVED = "resolved", "Resolved"
        HANDED_BACK = "handed_back", "Handed back to the AI"
        CANCELLED = "cancelled", "Cancelled"

    class Priority(models.TextChoices):
        HIGH = "high", "High"
        NORMAL = "normal", "Normal"
        LOW = "low", "Low"

    class Notification(models.TextChoices):
        NOT_CONFIGURED = "not_configured", "No webhook configured"
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    OPEN_STATUSES = (Status.WAITING, Status.CLAIMED)

    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.CASCADE, related_name="escalations"
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.WAITING)
    # What handed it over ("customer_button", "tool_auth_error", "staff_takeover", ...) and why.
    trigger = models.CharField(max_length=40)
    reason = models.CharField(max_length=500, blank=True)
    priority = models.CharField(max_length=6, choices=Priority.choices, default=Priority.NORMAL)
    priority_reason = models.CharField(max_length=200, blank=True)
    # The handoff packet (escalations/packet.py), PII masked; the assessment may arrive later.
    packet = models.JSONField(default=dict, blank=True)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The member of staff who took over, for staff-initiated escalations.",
    )
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="claimed_escalations",
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    first_staff_message_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    handed_back_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who resolved or handed it back.",
    )
    notification_status = models.CharField(
        max_length=14, choices=Notification.choices, default=Notification.NOT_CONFIGURED
    )
    notification_attempts = models.PositiveSmallIntegerField(default=0)
    notification_error = models.CharField(max_length=500, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation"],
                condition=models.Q(status__in=["waiting", "claimed"]),
                name="one_open_escalation_per_conversation",
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"Escalation {self.pk} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES
