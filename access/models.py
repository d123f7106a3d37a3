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
