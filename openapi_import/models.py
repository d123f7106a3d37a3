from __future__ import annotations

from django.conf import settings
from django.db import models

from openapi_import.vocabulary import (
    ACCESS_LABELS,
    APPROVAL_LABELS,
    IDENTITY_ROLE_LABELS,
    AccessType,
    Approval,
    IdentityRole,
    choices,
)

__all__ = ["AccessType", "ApiSpec", "Approval", "IdentityRole", "ImportJob", "Operation"]


class ApiSpec(models.Model):
    """One business API, kept across re-imports of new versions of its spec."""

    title = models.CharField(max_length=200)
    version = models.CharField(max_length=100, blank=True)
    spec_version = models.CharField(max_length=20, blank=True, help_text="2.0, 3.0.x or 3.1.x")
    source_url = models.URLField(max_length=2000, blank=True)
    base_url = models.CharField(
        max_length=2000,
        blank=True,
        help_text="Where tool calls go. Taken from the spec's servers; edit when it is relative "
        "or points elsewhere.",
    )
    servers = models.JSONField(default=list, blank=True)
    security_schemes = models.JSONField(default=dict, blank=True)
    # Upstream credentials for tool calls: sent as this header, never shown to a model and never
    # logged. Only staff set them (admin); the value is write-only there.
    auth_header = models.CharField(
        max_length=100, blank=True, help_text="e.g. Authorization or X-Api-Key"
    )
    auth_value = models.CharField(max_length=2000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "API spec"
        ordering = ["title"]

    def __str__(self) -> str:
        return f"{self.title} {self.version}".strip()


class ImportJob(models.Model):
    """The source of truth for one import: what was asked, how far it got, what came of it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Source(models.TextChoices):
        URL = "url", "URL"
        UPLOAD = "upload", "File upload"
        TEXT = "text", "Pasted text"

    source = models.CharField(max_length=10, choices=Source.choices)
    source_url = models.URLField(max_length=2000, blank=True)
    source_name = models.CharField(max_length=255, blank=True, help_text="Uploaded file name")
    # The uploaded or pasted document, kept so a worker in another process can parse it.
    payload = models.BinaryField(blank=True, default=b"", editable=False)
    target_spec = models.ForeignKey(
        ApiSpec,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Re-import into this spec; otherwise matched by the same source URL, or created.",
    )
    spec = models.ForeignKey(
        ApiSpec, null=True, blank=True, on_delete=models.SET_NULL, related_name="import_jobs"
    )
    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    progress = models.PositiveSmallIntegerField(default=0)
    stage = models.CharField(max_length=100, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)
    report = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        what = self.source_url or self.source_name or self.get_source_display()
        return f"Import #{self.pk} of {what}"

    @property
    def duration_ms(self) -> int | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return int((self.finished_at - self.started_at).total_seconds() * 1000)

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.DONE, self.Status.FAILED}


class Operation(models.Model):
    """One operation of a spec: a tool the agents may call once reviewed and enabled.

    ``suggested_*`` hold the classifier's view; the plain fields are what applies, and
    ``overridden_fields`` names those staff changed, so a re-import keeps them.
    """

    class ReviewState(models.TextChoices):
        UNREVIEWED = "unreviewed", "Not reviewed"
        REVIEWED = "reviewed", "Reviewed"
        CHANGED = "changed", "Changed since review"

    spec = models.ForeignKey(ApiSpec, on_delete=models.CASCADE, related_name="operations")
    operation_id = models.CharField(max_length=64)
    operation_id_generated = models.BooleanField(default=False)
    method = models.CharField(max_length=7)
    path = models.CharField(max_length=1000)
    summary = models.CharField(max_length=500, blank=True)
    description = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    parameters_schema = models.JSONField(default=dict)
    parameter_locations = models.JSONField(default=dict)
    # Property -> name on the wire, where they differ (a header "id" beside a path "id").
    parameter_names = models.JSONField(default=dict, blank=True)
    body_content_type = models.CharField(max_length=100, blank=True)
    server_url = models.CharField(max_length=2000, blank=True)
    security = models.JSONField(default=list, blank=True)
    deprecated = models.BooleanField(default=False)
    extensions = models.JSONField(default=dict, blank=True)
    fingerprint = models.CharField(max_length=64)

    access_type = models.CharField(max_length=12, choices=choices(ACCESS_LABELS))
    approval = models.CharField(max_length=8, choices=choices(APPROVAL_LABELS))
    agent_group = models.CharField(max_length=50, blank=True)
    customer_parameters = models.JSONField(default=list, blank=True)
    # Parameter property (or "header:<Name>") -> identity claim ("customer.id", "customer.email",
    # "customer.name"). Bound parameters are filled from the verified identity, never by the
    # model, and are left out of the tool schema it sees.
    identity_bindings = models.JSONField(default=dict, blank=True)
    suggested_identity_bindings = models.JSONField(default=dict, blank=True)
    # Reads personal data: unavailable until the customer is verified (writes always are).
    personal_data = models.BooleanField(default=False)
    identity_role = models.CharField(
        max_length=20, choices=choices(IDENTITY_ROLE_LABELS), default=IdentityRole.NONE, blank=True
    )
    # Approval that depends on an argument: [{"when": {"argument": "amount", "op": ">",
    # "value": 50}, "approver": "staff"}]; the first matching rule wins over ``approval``
    # (conversations/approval_rules.py).
    approval_rules = models.JSONField(default=list, blank=True)
    # Property -> how it goes on the wire: {"style", "explode", "allowReserved",
    # "collectionFormat"} for parameters; "body" -> {"encoding": {...}} for form bodies.
    parameter_serialization = models.JSONField(default=dict, blank=True)
    # Properties that carry credentials: never filled by the model, only from the spec's
    # upstream credentials.
    credential_parameters = models.JSONField(default=list, blank=True)
    suggested_access_type = models.CharField(max_length=12, choices=choices(ACCESS_LABELS))
    suggested_approval = models.CharField(max_length=8, choices=choices(APPROVAL_LABELS))
    confidence = models.FloatField(default=0.0)
    reasons = models.JSONField(default=list, blank=True)
    overridden_fields = models.JSONField(default=list, blank=True)

    enabled = models.BooleanField(default=False)
    review_state = models.CharField(
        max_length=12, choices=ReviewState.choices, default=ReviewState.UNREVIEWED
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    # Operations gone from a newer version stay for the record but can never be tools.
    removed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["spec", "path", "method"]
        constraints = [
            models.UniqueConstraint(fields=["spec", "operation_id"], name="unique_operation_id")
        ]
        indexes = [models.Index(fields=["spec", "enabled", "review_state"])]

    def __str__(self) -> str:
        return f"{self.operation_id} ({self.method} {self.path})"

    @property
    def is_tool(self) -> bool:
        return (
            self.enabled
            and self.review_state == self.ReviewState.REVIEWED
            and self.removed_at is None
        )
