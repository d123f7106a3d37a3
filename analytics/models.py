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
    TURN_RESOLVING = "turn_resolving"
    RESOLUTION_CONFIRMED = "resolution_confirmed"
    RESOLUTION_DECLINED = "resolution_declined"
    CONVERSATION_RESOLVED = "conversation_resolved"
    CONVERSATION_CLOSED = "conversation_closed"
    CONVERSATION_REOPENED = "conversation_reopened"


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


# Upper bounds (ms) of the latency histogram every rollup keeps; the last bucket is open. A
# percentile reads as the bound of the bucket it falls in (docs/analytics.md).
LATENCY_BOUNDS_MS: tuple[float, ...] = (
    50, 100, 200, 300, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 7_500, 10_000, 15_000,
    20_000, 30_000, 60_000, 120_000, 300_000, 600_000, 1_800_000, 3_600_000, 14_400_000,
    86_400_000,
)  # fmt: skip


class EventRollup(models.Model):
    """Hourly aggregate of the events sharing ``type`` and the columns figures group by
    (docs/analytics.md). Maintained by the ``analytics_rollups_refresh`` job; the dashboard
    reads these instead of scanning raw events."""

    hour = models.DateTimeField()
    type = models.CharField(max_length=40, choices=EventType.choices)
    agent = models.CharField(max_length=100, blank=True)
    backend = models.CharField(max_length=50, blank=True)
    model = models.CharField(max_length=100, blank=True)
    operation = models.CharField(max_length=100, blank=True)
    outcome = models.CharField(max_length=40, blank=True)
    count = models.PositiveIntegerField(default=0)
    latency_count = models.PositiveIntegerField(default=0)
    latency_sum = models.FloatField(default=0)
    latency_max = models.FloatField(null=True, blank=True)
    # The same for a turn's time to its first streamed token (data.first_token_ms).
    first_token_count = models.PositiveIntegerField(default=0)
    first_token_max = models.FloatField(null=True, blank=True)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(max_digits=16, decimal_places=6, default=0)

    class Meta:
        ordering = ["hour", "type"]
        indexes = [models.Index(fields=["hour", "type"])]
        permissions = [("view_dashboard", "Can view the analytics dashboard and ops pages")]

    def __str__(self) -> str:
        return f"{self.type} at {self.hour:%Y-%m-%d %H:00}"


# Histogram columns latency_b0 … and first_token_b0 …: one count per bucket of
# LATENCY_BOUNDS_MS plus the open last one. Plain integer columns, not JSON, so a range's
# histogram is a SUM in the database on SQLite and PostgreSQL alike (docs/performance.md).
ROLLUP_BUCKETS = len(LATENCY_BOUNDS_MS) + 1
for _histogram in ("latency", "first_token"):
    for _index in range(ROLLUP_BUCKETS):
        EventRollup.add_to_class(f"{_histogram}_b{_index}", models.PositiveIntegerField(default=0))


class RollupCursor(models.Model):
    """How far the rollups are final: every hour before ``through`` is aggregated."""

    through = models.DateTimeField()

    def __str__(self) -> str:
        return f"rollups through {self.through:%Y-%m-%d %H:00}"
