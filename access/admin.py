"""API keys in the admin (SPEC §11): a supervisor issues, sees and revokes them. The secret is
shown once, on the page that answers the creation, and never stored or sent again."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from access.models import ApiKey
from access.services import api_key_issue, api_key_revoke


class ApiKeyAddForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="What the key may do; it acts as its owner, narrowed to these.",
    )

    class Meta:
        model = ApiKey
        fields = ("name", "integration", "owner", "scopes", "expires_at")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        owner = self.fields["owner"]
        assert isinstance(owner, forms.ModelChoiceField)
        owner.queryset = get_user_model().objects.filter(is_active=True, is_staff=True)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "integration",
        "prefix",
        "owner",
        "scopes",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "active",
    )
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "owner__username")
    readonly_fields = (
        "prefix",
        "integration",
        "owner",
        "scopes",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    fields = (
        "name",
        "integration",
        "prefix",
        "owner",
        "scopes",
        "expires_at",
        "created_at",
        "last_used_at",
    )
    actions = ["revoke"]

    @admin.display(boolean=True, description="active")
    def active(self, api_key: ApiKey) -> bool:
        return api_key.is_active

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = ApiKeyAddForm
            kwargs["fields"] = ApiKeyAddForm.Meta.fields
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return () if obj is None else self.readonly_fields

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ApiKeyAddForm.Meta.fields if obj is None else self.fields

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {"owner": request.user.pk}

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        data = form.cleaned_data
        issued = api_key_issue(
            owner=data["owner"],
            name=data["name"],
            scopes=list(data["scopes"]),
            expires_at=data["expires_at"],
            integration=data.get("integration") or "",
        )
        # The admin goes on with ``obj`` (change log, the answer): make it the issued row.
        obj.__dict__.update(issued.api_key.__dict__)
        request._issued_api_key = issued.plaintext  # type: ignore[attr-defined]

    def response_add(
        self, request: HttpRequest, obj: ApiKey, post_url_continue: str | None = None
    ) -> HttpResponse:
        """The one page that shows the secret; nothing keeps it (no message, no session)."""
        plaintext = getattr(request, "_issued_api_key", None)
        if plaintext is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "title": "API key created",
            "opts": self.opts,
            "api_key": obj,
            "plaintext": plaintext,
        }
        # The admin's views are never_cache (no-store): the page is not kept either.
        return TemplateResponse(request, "admin/access/apikey/issued.html", context)

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = 0
        for api_key in queryset:
            revoked += api_key.revoked_at is None
            api_key_revoke(api_key=api_key)
        messages.success(request, f"Revoked {revoked} key(s).")
