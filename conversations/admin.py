from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from config.errors import ApplicationError
from conversations.interrupts import interrupt_decide, interrupts_expire_due
from conversations.models import (
    Agent,
    Conversation,
    Interrupt,
    Message,
    ModelBackend,
    StateTransition,
    ToolCall,
    Turn,
)


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "permission", "is_fallback", "enabled", "backend", "model",
                    "template", "position")  # fmt: skip
    list_editable = ("enabled", "position")
    list_filter = ("permission", "enabled", "template")
    search_fields = ("name", "slug", "description")
    prepopulated_fields = {"slug": ("name",)}
    filter_horizontal = ("operations",)
    fieldsets = (
        (None, {"fields": ("name", "slug", "description", "permission", "operations",
                           "is_fallback", "enabled", "position")}),
        ("Personality", {"fields": ("system_prompt", "tone", "greeting",
                                    "escalation_message")}),
        ("Model", {"fields": ("backend", "model", "fallback")}),
        ("Origin", {"fields": ("template",)}),
    )  # fmt: skip

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        if "backend" in form.base_fields:
            from conversations.model_backends import backend_names

            # A choice of the configured names, not free text (Agent.clean checks it too).
            choices = [("", "— the default backend —")]
            choices += [(name, name) for name in backend_names()]
            current = obj.backend if obj is not None else ""
            if current and current not in dict(choices):
                choices.append((current, f"{current} (not configured)"))
            form.base_fields["backend"] = forms.ChoiceField(
                choices=choices,
                required=False,
                help_text=Agent._meta.get_field("backend").help_text,
            )
        return form


class ModelBackendForm(forms.ModelForm):
    # The key is never sent back to the browser; an empty field keeps the stored one.
    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Empty keeps the stored key. Local servers need none.",
    )
    clear_api_key = forms.BooleanField(required=False, help_text="Remove the stored key.")

    class Meta:
        model = ModelBackend
        fields = (
            "name", "kind", "enabled", "base_url", "model", "api_key", "timeout", "retries",
            "temperature", "max_tokens", "headers", "stream_options", "price_per_1k_prompt",
            "price_per_1k_completion",
        )  # fmt: skip

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("api_key") and not data.get("clear_api_key") and self.instance.pk:
            data["api_key"] = ModelBackend.objects.get(pk=self.instance.pk).api_key
        if data.get("clear_api_key"):
            data["api_key"] = ""
        self.instance.api_key = data.get("api_key") or ""
        return data


@admin.register(ModelBackend)
class ModelBackendAdmin(admin.ModelAdmin):
    """Named model backends (issue 15): supervisors add and change them; "Test connection"
    sends one tiny request. ``LLM_BACKENDS`` in the environment wins over a row of the same
    name."""

    form = ModelBackendForm
    list_display = ("name", "kind", "base_url", "model", "timeout", "enabled", "source")
    list_filter = ("kind", "enabled")
    search_fields = ("name", "base_url", "model")
    actions = ["test_connection"]
    fieldsets = (
        (None, {"fields": ("name", "kind", "enabled", "base_url", "model", "api_key",
                           "clear_api_key")}),
        ("Calls", {"fields": ("timeout", "retries", "temperature", "max_tokens", "headers",
                              "stream_options")}),
        ("Price", {"fields": ("price_per_1k_prompt", "price_per_1k_completion")}),
    )  # fmt: skip

    @admin.display(description="In use")
    def source(self, backend: ModelBackend) -> str:
        from conversations.model_backends import environment_names

        if backend.name in environment_names():
            return "no: LLM_BACKENDS names it (the environment wins)"
        return "yes" if backend.enabled else "no: disabled"

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        from conversations.model_backends import backends_changed

        super().save_model(request, obj, form, change)
        backends_changed()

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        from conversations.model_backends import backends_changed

        super().delete_model(request, obj)
        backends_changed()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ModelBackend]) -> None:
        from conversations.model_backends import backends_changed

        super().delete_queryset(request, queryset)
        backends_changed()

    @admin.action(description="Test connection", permissions=["change"])
    def test_connection(self, request: HttpRequest, queryset: QuerySet[ModelBackend]) -> None:
        from conversations.model_backends import backend_test_sync

        for backend in queryset:
            try:
                result = backend_test_sync(name=backend.name)
            except Exception as exc:  # a backend the registry cannot build: say why
                self.message_user(request, f"{backend.name}: {exc}", messages.ERROR)
                continue
            if result.ok:
                tools = "works" if result.tool_calling else "did not call the test tool"
                self.message_user(
                    request,
                    f"{backend.name}: answered in {result.latency_ms:.0f} ms by model "
                    f"{result.model!r} at {result.url}; tool calling {tools}.",
                    messages.SUCCESS if result.tool_calling else messages.WARNING,
                )
            else:
                self.message_user(
                    request,
                    f"{backend.name}: {result.error_kind}: {result.error} (URL {result.url})",
                    messages.ERROR,
                )


def _pretty(value: Any) -> SafeString:
    return format_html(
        '<pre class="ad-json">{}</pre>',
        json.dumps(value, indent=2, default=str),
    )


class MessageInline(admin.TabularInline):
    model = Message
    fields = ("seq", "kind", "role", "content", "agent", "author", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("seq",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ToolCallInline(admin.TabularInline):
    model = ToolCall
    fields = ("operation_name", "status", "http_status", "arguments_view", "error_kind",
              "attempts", "latency_ms", "created_at")  # fmt: skip
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Arguments")
    def arguments_view(self, call: ToolCall) -> SafeString:
        return _pretty(call.arguments)


class TransitionInline(admin.TabularInline):
    model = StateTransition
    fields = ("from_state", "to_state", "reason", "actor", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    class Media:
        css = {"all": ["actiondesk/admin.css"]}

    list_display = ("__str__", "state", "current_agent", "turn_count", "reopen_count",
                    "updated_at")  # fmt: skip
    list_filter = ("state", "resolution", "current_agent")
    search_fields = ("id", "title", "visitor_id")
    readonly_fields = ("id", "replay_link", "visitor_id", "user", "state", "last_seq",
                       "context_view", "current_agent", "turn_count", "reopen_count", "title",
                       "created_at", "updated_at")  # fmt: skip
    exclude = ("context",)
    inlines = [MessageInline, ToolCallInline, TransitionInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the record is read-only; staff act through escalations

    @admin.display(description="Replay")
    def replay_link(self, conversation: Conversation) -> SafeString:
        url = reverse("admin:analytics_replay", args=[conversation.pk])
        return format_html('<a href="{}">Replay step by step</a>', url)

    @admin.display(description="Context (masked in logs, kept here for staff)")
    def context_view(self, conversation: Conversation) -> SafeString:
        return _pretty(conversation.context)


@admin.register(Turn)
class TurnAdmin(admin.ModelAdmin):
    list_display = ("id", "conversation", "status", "agent", "model_calls", "tool_calls",
                    "latency_ms", "first_token_ms", "prompt_tokens", "completion_tokens",
                    "started_at")  # fmt: skip
    list_filter = ("status", "agent")
    readonly_fields = [f.name for f in Turn._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Interrupt)
class InterruptAdmin(admin.ModelAdmin):
    """Pending actions. Staff decide those whose approver is staff; customers decide theirs in
    the chat."""

    class Media:
        css = {"all": ["actiondesk/admin.css"]}

    list_display = ("summary", "approver", "status", "policy_reason", "conversation",
                    "expires_at", "decided_by", "created_at")  # fmt: skip
    list_filter = ("status", "approver")
    readonly_fields = ("summary", "operation_name", "arguments_view", "arguments_hash",
                       "approver", "policy_reason", "status", "conversation", "expires_at",
                       "decided_at", "decided_by", "decision_source", "edited",
                       "created_at")  # fmt: skip
    exclude = ("arguments", "turn", "tool_call", "operation")
    actions = ["approve", "reject"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Interrupt]:
        interrupts_expire_due()  # expiry is lazy: reading the list applies it
        return super().get_queryset(request).select_related("conversation", "decided_by")

    @admin.display(description="Arguments")
    def arguments_view(self, interrupt: Interrupt) -> SafeString:
        return _pretty(interrupt.arguments)

    def has_decide_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("conversations.decide_interrupt")

    def _decide(self, request: HttpRequest, queryset: QuerySet[Interrupt], approve: bool) -> None:
        done = 0
        for interrupt in queryset:
            if interrupt.approver != Interrupt.Approver.STAFF:
                messages.warning(request, f"{interrupt.summary}: the customer decides this one.")
                continue
            try:
                interrupt_decide(
                    interrupt_id=interrupt.pk,
                    approve=approve,
                    source="staff",
                    user=request.user,  # type: ignore[arg-type]
                    expected_hash=interrupt.arguments_hash,
                )
            except ApplicationError as exc:
                messages.error(request, f"{interrupt.summary}: {exc.message}")
            else:
                done += 1
        if done:
            verb = "Approved" if approve else "Rejected"
            messages.success(request, f"{verb} {done} action(s).")

    @admin.action(description="Approve selected actions (staff)", permissions=["decide"])
    def approve(self, request: HttpRequest, queryset: QuerySet[Interrupt]) -> None:
        self._decide(request, queryset, True)

    @admin.action(description="Reject selected actions (staff)", permissions=["decide"])
    def reject(self, request: HttpRequest, queryset: QuerySet[Interrupt]) -> None:
        self._decide(request, queryset, False)
