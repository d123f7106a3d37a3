from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiKey(models.Model):
    """A key a program sends as ``Authorization: Bearer ad_<prefix>_<secret>``.

    Only the SHA-256 of the whole key is stored; ``prefix`` finds the row without a scan. The key
    acts as its owner, narrowed to its scopes.
    """

    class Scope(models.TextChoices):
        CHAT = "chat", "Chat"
        IMPORTS = "imports", "Imports and classification"
        APPROVALS = "approvals", "Approvals"
        ESCALATIONS = "escalations", "Escalations"
        ANALYTICS = "analytics", "Analytics and replay"
        AGENTS = "agents", "Agents"
        DOCS = "docs", "API docs and schema"

    # The program the key belongs to (SPEC §11): conversations a key creates are visible to the
    # keys of the same integration (and staff), never to other keys. Empty: the key alone.
    integration = models.CharField(
        max_length=100, blank=True, help_text="The program it belongs to; empty: this key alone."
    )

    name = models.CharField(max_length=100)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} (ad_{self.prefix}_…)"

    @property
    def is_active(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    @property
    def integration_name(self) -> str:
        """What scopes the key's conversations: its integration, or the key itself."""
        return self.integration or f"key:{self.prefix}"


class VersionStamp(models.Model):
    """A version stamp of ``config.versions`` when no Redis is configured: every process reads
    the same row, so a change made in one reaches all at once (one primary-key read per check).
    """

    name = models.CharField(max_length=64, primary_key=True)
    value = models.CharField(max_length=32)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "version stamp"

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


class IdempotencyRecord(models.Model):
    """A POST sent with ``Idempotency-Key`` (SPEC §11, draft-ietf-httpapi-idempotency-key-header):
    claimed before the operation runs, so a concurrent retry sees it running (409), then holding
    the response that a retry with the same body gets back instead of a second side effect."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"

    # Whose key it is: "key:<api key id>" or "user:<id>" for a staff session.
    principal = models.CharField(max_length=40)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status = models.CharField(max_length=7, choices=Status.choices, default=Status.RUNNING)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.BinaryField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "idempotency record"
        constraints = [
            models.UniqueConstraint(fields=["principal", "key"], name="unique_idempotency_key")
        ]

    def __str__(self) -> str:
        return f"{self.principal} {self.key} ({self.status})"
