from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from sites.models import Site, new_identity_secret


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ("name", "public_id", "origins_list", "enabled", "updated_at")
    list_filter = ("enabled",)
    search_fields = ("name", "public_id", "allowed_origins")
    # Checkboxes: a site has a handful of agents, and Django's two-box filter widget carries
    # ARIA attributes axe-core reports as prohibited.
    formfield_overrides = {models.ManyToManyField: {"widget": forms.CheckboxSelectMultiple}}
    readonly_fields = ("public_id", "identity_secret", "snippet")
    actions = ("rotate_identity_secret",)
    fieldsets = (
        (None, {"fields": ("name", "enabled", "allowed_origins", "agents")}),
        ("Look", {"fields": ("greeting", "accent_color", "accent_text_color")}),
        ("Embedding", {"fields": ("public_id", "snippet", "identity_secret")}),
    )

    @admin.display(description="Origins")
    def origins_list(self, site: Site) -> str:
        return ", ".join(site.origins)

    @admin.display(description="Script tag for the site's pages")
    def snippet(self, site: Site) -> SafeString:
        if not site.pk:
            return format_html("<p>Save the site to get its script tag.</p>")
        return format_html(
            '<code>&lt;script src="https://&lt;this host&gt;/widget.js" data-site="{}" '
            "async&gt;&lt;/script&gt;</code>",
            site.public_id,
        )

    @admin.action(description="Rotate the identity secret (the site must sign with the new one)")
    def rotate_identity_secret(self, request: HttpRequest, queryset: QuerySet[Site]) -> None:
        for site in queryset:
            site.identity_secret = new_identity_secret()
            site.save(update_fields=["identity_secret", "updated_at"])
        messages.success(request, f"Rotated the identity secret of {queryset.count()} site(s).")
