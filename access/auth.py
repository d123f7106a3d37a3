"""Authentication for ``/api/v1``: an API key in the ``Authorization`` header (never the query
string), or a staff member's admin session (with CSRF). Scopes narrow what a key may reach."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.errors import AuthorizationError
from ninja.security import HttpBearer, SessionAuth

from access.models import ApiKey
from access.services import api_key_authenticate


class ApiKeyAuth(HttpBearer):
    openapi_description = "An Actiondesk API key: `Authorization: Bearer ad_…`."

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        api_key = api_key_authenticate(plaintext=token)
        if api_key is None:
            return None
        request.user = api_key.owner
        request.api_key = api_key  # type: ignore[attr-defined]
        return api_key


class StaffSessionAuth(SessionAuth):
    """The admin's session, for staff using the API from the browser."""

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = super().authenticate(request, key)
        if user is not None and user.is_staff:
            return user
        return None


api_auth = [ApiKeyAuth(), StaffSessionAuth()]


def require(request: HttpRequest, *, scope: str, permission: str | None = None) -> None:
    """Refuse (403) a key without ``scope`` or a user without ``permission``."""
    api_key: ApiKey | None = getattr(request, "api_key", None)
    if api_key is not None and scope not in api_key.scopes:
        raise AuthorizationError(message=f"This API key lacks the '{scope}' scope.")
    if permission and not request.user.has_perm(permission):
        raise AuthorizationError(message=f"Your role lacks the '{permission}' permission.")
