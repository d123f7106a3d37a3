"""The escalation record in the admin. The live queue (``/admin/escalations/queue/``) is the
staff's main page; this list is for looking back, filtering and bulk claiming."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from config.errors import ApplicationError
from escalations.models import Escalation
from escalations.services import escalation_claim, escalation_priority_set


@admin.register(Escalation)
class EscalationAdmin(admin.ModelAdmin):
    list_display = ("id", "conversation", "status", "priority", "trigger", "claimed_by",
                    "created_at", "notification_status", "handoff_link")  # fmt: skip
    list_filter = ("status", "priority", "trigger", "notification_status")
    search_fields = ("conversation__id", "reason", "trigger")
    list_select_related = ("conversation", "claimed_by")
    date_hierarchy = "created_at"
    fields = ("handoff_link", "conversation", "status", "priority", "priority_reason", "trigger",
              "reason", "packet_view", "opened_by", "claimed_by", "claimed_at",
              "first_staff_message_at", "resolved_at", "handed_back_at", "cancelled_at",
              "closed_by", "notification_status", "notification_attempts",
              "notification_error", "notified_at", "created_at")  # fmt: skip
    readonly_fields = tuple(f for f in fields if f != "priority")
    actions = ["claim_selected"]

    class Media:
        css = {"all": ["escalations/escalations.css"]}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # escalations open from conversations, never by hand

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the record feeds analytics

    @admin.display(description="Handoff")
    def handoff_link(self, escalation: Escalation) -> SafeString:
        url = reverse("admin:escalations_handoff", args=[escalation.pk])
        return format_html('<a href="{}">Open the handoff page</a>', url)

    @admin.display(description="Packet")
    def packet_view(self, escalation: Escalation) -> SafeString:
        text = json.dumps(escalation.packet, indent=2, ensure_ascii=False, default=str)
        return format_html('<pre class="esc-json">{}</pre>', text)

    def save_model(
        self, request: HttpRequest, obj: Escalation, form: ModelForm, change: bool
    ) -> None:
        # Only the priority is editable; the service records who changed it and tells the queue.
        if "priority" in form.changed_data:
            escalation_priority_set(
                escalation=obj,
                priority=form.cleaned_data["priority"],
                user=request.user,  # type: ignore[arg-type]
            )

    @admin.action(description="Claim selected escalations", permissions=["change"])
    def claim_selected(self, request: HttpRequest, queryset: QuerySet[Escalation]) -> None:
        claimed = 0
        for escalation in queryset:
            try:
                escalation_claim(escalation=escalation, user=request.user)  # type: ignore[arg-type]
            except ApplicationError as exc:
                messages.error(request, f"#{escalation.pk}: {exc.message}")
            else:
                claimed += 1
        if claimed:
            messages.success(request, f"Claimed {claimed} escalation(s).")
