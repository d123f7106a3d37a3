from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from analytics.models import Event


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("occurred_at", "type", "conversation_id", "agent", "operation", "outcome",
                    "latency_ms", "prompt_tokens", "completion_tokens")  # fmt: skip
    list_filter = ("type", "outcome", "backend")
    search_fields = ("conversation_id", "operation", "agent")
    date_hierarchy = "occurred_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # the record is append-only
