from __future__ import annotations

from django.db import models
from django.utils import timezone


class EventType(models.TextChoices):
    """Every step worth counting (SPEC §9). Values are stable: dashboards and exports use them."""

    CONVERSATION_STARTED = "conversation_started"
    MESSAGE_RECEIVED = "message_received"
    MESSAGE_SENT = "message_sent"
    MESSAGE_REJECTED = "message_rejected"
    TURN_COMPLETED = "turn_completed"
    TURN_FAILED = "turn_failed"
    AGENT_SELECTED = "agent_selected"
    CLARIFICATION_ASKED = "clarification_asked"
    MODEL_CALLED = "model_called"
    TOOL_CALLED = "tool_called"
    INTERRUPT_CREATED = "interrupt_created"
    INTERRUPT_APPROVED = "interrupt_approved"
    INTERRUPT_REJECTED = "interrupt_rejected"
    INTERRUPT_EXPIRED = "interrupt_expired"
    INJECTION_FLAGGED = "injection_flagged"
    ESCALATION_REQUESTED = "escalation_requested"
    ESCALATION_CREATED = "escalation_created"
    ESCALATION_CLAIMED = "escalation_claimed"
    STAFF_FIRST_MESSAGE = "staff_first_message"
    ESCALATION_RESOLVED = "escalation_resolved"
    ESCALATION_HANDED_BACK = "escalation_handed_back"
    STATE_CHANGED = "state_changed"


class Event(models.Model):
    """One recorded step. Denormalised on purpose: the dashboard aggregates millions of rows by
    type and time, so the columns it groups by are plain columns, not JSON."""

    type = models.CharField(max_length=40, choices=EventType.choices)
    occurred_at = models.DateTimeField(default=timezone.now)
    conversation_id = models.UUIDField(null=True, blank=True)
    agent = models.CharField(max_length=100, blank=True)
    backend = models.CharField(max_length=50, blank=True)
    model = models.CharField(max_length=100, blank=True)
    operation = models.CharField(max_length=100, blank=True)
    outcome = models.CharField(max_length=40, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["occurred_at", "id"]
        indexes = [
            models.Index(fields=["occurred_at"]),
            models.Index(fields=["type", "occurred_at"]),
            models.Index(fields=["conversation_id", "occurred_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.type} at {self.occurred_at:%Y-%m-%d %H:%M:%S}"
