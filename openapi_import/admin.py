from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from config.errors import ApplicationError
from conversations.approval_rules import OPERATORS, ApprovalRuleError, describe, normalize
from openapi_import.forms import ImportForm
from openapi_import.identity import CLAIMS, bindings_clean
from openapi_import.models import ApiSpec, ImportJob, Operation
from openapi_import.selectors import server_address_warning, spec_private_servers
from openapi_import.services import (
    EDITABLE_FIELDS,
    IDENTITY_FIELDS,
    import_job_create,
    operation_update,
    operations_bulk_update,
)


class ApiSpecForm(ModelForm):
    """The credential is write-only: the form never shows it, leaving it empty keeps it, and
    "Remove the credential" clears it."""

    auth_value = forms.CharField(
        required=False,
        max_length=2000,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        label="Credential",
        help_text="Sent in the header above on every tool call. Write-only: leave empty to keep "
        "the current value.",
    )
    clear_auth_value = forms.BooleanField(required=False, label="Remove the credential")

    class Meta:
        model = ApiSpec
        fields = ("title", "base_url", "auth_header", "auth_value")

    def clean_auth_value(self) -> str:
        value: str = self.cleaned_data.get("auth_value", "")
        return value or (self.instance.auth_value if self.instance.pk else "")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("clear_auth_value"):
            if self.data.get(self.add_prefix("auth_value")):
                self.add_error(
                    "clear_auth_value", "Either write a new credential or remove it, not both."
                )
            data["auth_value"] = ""
        return data


_CREDENTIAL_INPUTS = ("auth_value", "clear_auth_value")


@admin.register(ApiSpec)
class ApiSpecAdmin(admin.ModelAdmin):
    form = ApiSpecForm
    list_display = (
        "title",
        "version",
        "spec_version",
        "base_url",
        "operation_count",
        "tool_count",
        "updated_at",
    )
    search_fields = ("title", "source_url")
    readonly_fields = (
        "version",
        "spec_version",
        "source_url",
        "servers",
        "private_servers",
        "security_schemes",
        "created_at",
        "updated_at",
        "operations_link",
    )
    fields = (
        "title",
        "base_url",
        "auth_header",
        "credential",
        "auth_value",
        "clear_auth_value",
        *readonly_fields,
    )

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = super().get_fields(request, obj)
        if not self.has_change_permission(request, obj):
            # Read-only pages render every field's stored value: never the credential's.
            return [f for f in fields if f not in _CREDENTIAL_INPUTS]
        if obj is None:
            return [f for f in fields if f not in ("credential", "clear_auth_value")]
        return fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("credential", *super().get_readonly_fields(request, obj))

    @admin.display(description="Credential")
    def credential(self, spec: ApiSpec) -> str:
        """Whether a credential is stored, never what it is (for everyone, supervisors too)."""
        return "set" if spec.auth_value else "not set"

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiSpec]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_operations=Count("operations", filter=Q(operations__removed_at__isnull=True)),
                n_tools=Count(
                    "operations",
                    filter=Q(
                        operations__enabled=True,
                        operations__review_state=Operation.ReviewState.REVIEWED,
                        operations__removed_at__isnull=True,
                    ),
                ),
            )
        )

    @admin.display(description="Operations", ordering="n_operations")
    def operation_count(self, spec: ApiSpec) -> int:
        return getattr(spec, "n_operations", 0)

    @admin.display(description="Tools", ordering="n_tools")
    def tool_count(self, spec: ApiSpec) -> int:
        return getattr(spec, "n_tools", 0)

    @admin.display(description="Private servers")
    def private_servers(self, spec: ApiSpec) -> SafeString | str:
        """Flagged at review: a spec whose servers are on private addresses (SPEC §8)."""
        found = spec_private_servers(spec=spec)
        if not found:
            return "None"
        return format_html(
            '<ul class="ad-warning">{}</ul>',
            format_html_join(
                "",
                "<li>⚠ {}: {}</li>",
                ((item["url"], item["reason"]) for item in found),
            ),
        )

    @admin.display(description="Operations")
    def operations_link(self, spec: ApiSpec) -> SafeString:
        url = reverse("admin:openapi_import_operation_changelist") + f"?spec__id__exact={spec.pk}"
        return format_html('<a href="{}">Review the operations of this spec</a>', url)


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    class Media:
        css = {"all": ["actiondesk/admin.css"]}

    list_display = (
        "id",
        "source_label",
        "status",
        "progress",
        "spec",
        "operation_total",
        "created_by",
        "created_at",
        "duration",
    )
    list_filter = ("status", "source")
    readonly_fields = (
        "source",
        "source_url",
        "source_name",
        "target_spec",
        "spec",
        "status",
        "progress",
        "stage",
        "error_code",
        "error_message",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
        "duration",
        "report_view",
    )
    exclude = ("report",)
    change_form_template = "openapi_import/admin/importjob_change_form.html"

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Jobs are a record: viewable, never edited by hand.
        return False

    @admin.display(description="Source")
    def source_label(self, job: ImportJob) -> str:
        return job.source_url or job.source_name or job.get_source_display()

    @admin.display(description="Operations")
    def operation_total(self, job: ImportJob) -> int | None:
        return job.report.get("operations") if job.report else None

    @admin.display(description="Duration")
    def duration(self, job: ImportJob) -> str:
        return f"{job.duration_ms} ms" if job.duration_ms is not None else "—"

    @admin.display(description="Report")
    def report_view(self, job: ImportJob) -> SafeString:
        if not job.report:
            return format_html("{}", "—")
        return format_html(
            '<pre class="ad-json">{}</pre>',
            json.dumps(job.report, indent=2),
        )

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The import form: URL, upload or pasted text, then the job's page."""
        if not self.has_add_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        form = ImportForm(request.POST, request.FILES) if request.method == "POST" else ImportForm()
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                if data.get("url"):
                    job = import_job_create(
                        source=ImportJob.Source.URL,
                        url=data["url"],
                        created_by=request.user,  # type: ignore[arg-type]
                        target_spec=data.get("target_spec"),
                    )
                elif data.get("file"):
                    job = import_job_create(
                        source=ImportJob.Source.UPLOAD,
                        content=data["file"].read(),
                        filename=data["file"].name,
                        created_by=request.user,  # type: ignore[arg-type]
                        target_spec=data.get("target_spec"),
                    )
                else:
                    job = import_job_create(
                        source=ImportJob.Source.TEXT,
                        content=data["text"].encode(),
                        created_by=request.user,  # type: ignore[arg-type]
                        target_spec=data.get("target_spec"),
                    )
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                messages.info(request, f"Import #{job.pk} started.")
                return HttpResponseRedirect(
                    reverse("admin:openapi_import_importjob_change", args=[job.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": "Import an OpenAPI spec",
            "form": form,
            "opts": self.model._meta,
            "has_view_permission": True,
        }
        return render(request, "openapi_import/admin/import_form.html", context)


class OperationForm(ModelForm):
    """The review form: approval rules and identity bindings (against the operation's
    parameters) are checked here, so a bad value is a clear error on the field and nothing is
    saved."""

    class Meta:
        model = Operation
        fields = (*EDITABLE_FIELDS, *IDENTITY_FIELDS)
        help_texts = {
            "approval_rules": 'A list of rules, the first match wins, e.g. [{"when": {"argument": '
            '"amount", "op": ">", "value": 50}, "approver": "staff"}]. Operators: '
            + ", ".join(OPERATORS)
            + "; approvers: user (the customer) or staff. Otherwise the approval above applies.",
            "identity_bindings": 'Parameter → claim, e.g. {"email": "customer.email", '
            '"header:X-Customer-Id": "customer.id"}. Claims: ' + ", ".join(CLAIMS) + ". "
            "Bound parameters are filled from the verified customer and hidden from the model.",
            "personal_data": "Reads personal data: unavailable until the customer is verified.",
        }

    def clean_approval_rules(self) -> list[dict[str, Any]]:
        try:
            return normalize(self.cleaned_data.get("approval_rules"))
        except ApprovalRuleError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean_identity_bindings(self) -> dict[str, str]:
        try:
            return bindings_clean(
                self.cleaned_data.get("identity_bindings"),
                properties=self.instance.parameter_locations or {},
            )
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


class ReviewStateFilter(admin.SimpleListFilter):
    title = "tool"
    parameter_name = "tool"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Available to agents"), ("no", "Not available")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Operation]) -> QuerySet[Operation]:
        tool = Q(enabled=True, review_state=Operation.ReviewState.REVIEWED, removed_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(tool)
        if self.value() == "no":
            return queryset.exclude(tool)
        return queryset


@admin.register(Operation)
class OperationAdmin(admin.ModelAdmin):
    form = OperationForm

    class Media:
        css = {"all": ["actiondesk/admin.css"]}

    list_display = (
        "operation_id",
        "method",
        "path",
        "spec",
        "access_type",
        "approval",
        "confidence_pct",
        "enabled",
        "review_state",
        "is_tool_flag",
        "why",
    )
    list_editable = ("access_type", "approval", "enabled")
    list_filter = (
        "spec",
        "access_type",
        "approval",
        "review_state",
        "enabled",
        ReviewStateFilter,
        "method",
        "agent_group",
    )
    search_fields = ("operation_id", "path", "summary")
    list_select_related = ("spec",)
    list_per_page = 50
    actions = ["enable", "disable", "mark_reviewed"]
    readonly_fields = (
        "spec",
        "operation_id",
        "operation_id_generated",
        "method",
        "path",
        "summary",
        "description",
        "tags",
        "server_url",
        "body_content_type",
        "security",
        "deprecated",
        "suggested_access_type",
        "suggested_approval",
        "confidence",
        "reasons_list",
        "overridden_fields",
        "review_state",
        "reviewed_by",
        "reviewed_at",
        "removed_at",
        "schema_view",
        "credentials_view",
        "server_check",
        "tool_name_view",
        "approval_rules_view",
        "suggested_bindings_view",
    )
    fieldsets = (
        (None, {"fields": ("spec", "operation_id", "method", "path", "summary", "description")}),
        (
            "Classification",
            {
                "fields": (
                    "access_type",
                    "approval",
                    "approval_rules",
                    "approval_rules_view",
                    "agent_group",
                    "customer_parameters",
                    "credentials_view",
                    "identity_bindings",
                    "suggested_bindings_view",
                    "personal_data",
                    "identity_role",
                    "enabled",
                    "suggested_access_type",
                    "suggested_approval",
                    "confidence",
                    "reasons_list",
                    "overridden_fields",
                )
            },
        ),
        ("Review", {"fields": ("review_state", "reviewed_by", "reviewed_at", "removed_at")}),
        (
            "Definition",
            {
                "classes": ("collapse",),
                "fields": (
                    "schema_view",
                    "server_url",
                    "server_check",
                    "tool_name_view",
                    "body_content_type",
                    "security",
                    "tags",
                    "operation_id_generated",
                    "deprecated",
                ),
            },
        ),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # operations come from imports

    @admin.display(description="Confidence", ordering="confidence")
    def confidence_pct(self, operation: Operation) -> str:
        return f"{operation.confidence:.0%}"

    @admin.display(description="Tool", boolean=True)
    def is_tool_flag(self, operation: Operation) -> bool:
        return operation.is_tool

    @admin.display(description="Why")
    def why(self, operation: Operation) -> str:
        return "; ".join(operation.reasons[:2])

    @admin.display(description="Reasons")
    def reasons_list(self, operation: Operation) -> SafeString:
        return format_html(
            "<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((r,) for r in operation.reasons))
        )

    @admin.display(description="Credential parameters")
    def credentials_view(self, operation: Operation) -> SafeString | str:
        if not operation.credential_parameters:
            return "None"
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li><code>{}</code>: credential, from upstream credentials (never the model)</li>",
                ((name,) for name in operation.credential_parameters),
            ),
        )

    @admin.display(description="Who approves")
    def approval_rules_view(self, operation: Operation) -> SafeString:
        """The rules in words, then the level that applies when none matches."""
        try:
            rules = normalize(operation.approval_rules)
        except ApprovalRuleError as exc:
            return format_html("⚠ {}", str(exc))
        default = operation.get_approval_display()
        return format_html(
            "<ol>{}<li>otherwise: {}</li></ol>",
            format_html_join("", "<li>{}</li>", ((describe(rule),) for rule in rules)),
            default,
        )

    @admin.display(description="Suggested identity bindings")
    def suggested_bindings_view(self, operation: Operation) -> SafeString | str:
        suggested = operation.suggested_identity_bindings or {}
        if not suggested:
            return "None"
        accepted = operation.identity_bindings or {}
        return format_html(
            "<ul>{}</ul><p>Copy the ones you accept into Identity bindings.</p>",
            format_html_join(
                "",
                "<li><code>{}</code> ← <code>{}</code>{}</li>",
                (
                    (prop, claim, " (bound)" if accepted.get(prop) == claim else "")
                    for prop, claim in suggested.items()
                ),
            ),
        )

    @admin.display(description="Tool name for the model")
    def tool_name_view(self, operation: Operation) -> str:
        """Warned at review: another spec has the same operationId, so the model sees a longer,
        unique name (issue 15 item 7)."""
        from openapi_import.selectors import operation_tool_name, shared_operation_ids

        name = operation_tool_name(operation, shared_operation_ids())
        if name == operation.operation_id:
            return name
        return f"⚠ {name} (another spec also has operationId {operation.operation_id!r})"

    @admin.display(description="Server address")
    def server_check(self, operation: Operation) -> str:
        url = operation.server_url or operation.spec.base_url
        reason = server_address_warning(url) if url else None
        return f"⚠ private server: {reason}" if reason else "Public or relative"

    @admin.display(description="Parameters (JSON Schema)")
    def schema_view(self, operation: Operation) -> SafeString:
        return format_html(
            '<pre class="ad-json">{}</pre>',
            json.dumps(operation.parameters_schema, indent=2),
        )

    def save_model(
        self, request: HttpRequest, obj: Operation, form: ModelForm, change: bool
    ) -> None:
        """Inline and form edits go through the service, which records them as overrides."""
        original = Operation.objects.get(pk=obj.pk)
        changes = {f: form.cleaned_data[f] for f in form.changed_data if f in form.cleaned_data}
        try:
            operation_update(operation=original, user=request.user, **changes)  # type: ignore[arg-type]
        except ApplicationError as exc:
            messages.error(request, f"{obj.operation_id}: {exc.message}")

    @admin.action(description="Enable selected operations", permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[Operation]) -> None:
        count = operations_bulk_update(operations=queryset, action="enable", user=request.user)  # type: ignore[arg-type]
        messages.success(request, f"Enabled {count} operation(s). Only reviewed ones are tools.")

    @admin.action(description="Disable selected operations", permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet[Operation]) -> None:
        count = operations_bulk_update(operations=queryset, action="disable", user=request.user)  # type: ignore[arg-type]
        messages.success(request, f"Disabled {count} operation(s).")

    @admin.action(description="Mark selected operations reviewed", permissions=["change"])
    def mark_reviewed(self, request: HttpRequest, queryset: QuerySet[Operation]) -> None:
        count = operations_bulk_update(operations=queryset, action="review", user=request.user)  # type: ignore[arg-type]
        messages.success(request, f"Marked {count} operation(s) reviewed.")
