from __future__ import annotations

import json
from typing import Any

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
        ("Model", {"fields": ("backend", "model")}),
        ("Origin", {"fields": ("template",)}),
    )  # fmt: skip


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
