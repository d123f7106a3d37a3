"""Authentication for ``/api/v1``: an API key in the ``Authorization`` header (never the query
string), or a staff member's admin session (with CSRF). Scopes narrow what a key may reach."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from ninja.errors import AuthorizationError, Throttled
from ninja.security import HttpBearer, SessionAuth
from ninja.throttling import BaseThrottle

from access.models import ApiKey
from access.services import api_key_authenticate
from config import ratelimit
from config.errors import error_body


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


def parse_rate(rate: str) -> tuple[int, int]:
    """``"600/m"`` → (600, 60): requests per window of seconds (s, m, h, d)."""
    count, _, unit = rate.partition("/")
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}.get(unit[:1].lower())
    if not count.isdigit() or int(count) < 1 or seconds is None:
        raise ValueError(f"A rate is '<requests>/<s|m|h|d>', not {rate!r}.")
    return int(count), seconds


def client_address(request: HttpRequest) -> str:
    """The peer address as the server saw it (Daphne's proxy headers set it behind a proxy);
    never a client-supplied X-Forwarded-For, which anyone could vary to escape the limit."""
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def anonymous_limit(request: HttpRequest) -> None:
    """The last authentication callback, reached only when no credentials were valid: counts
    the request against its address (one atomic increment shared by every process) and
    refuses with 429 past ``API_ANON_RATE_LIMIT``; otherwise authentication fails (401)."""
    limit, window = parse_rate(settings.API_ANON_RATE_LIMIT)
    verdict = ratelimit.hit(f"api-anon:{client_address(request)}", limit=limit, window=window)
    if not verdict.allowed:
        raise Throttled(wait=verdict.retry_after)


class KeyRateThrottle(BaseThrottle):
    """``API_RATE_LIMIT`` per API key (or staff member) on ``config.ratelimit``: an atomic
    increment in the shared cache per request, so two processes can never both let the
    limit's last request through (ninja's own throttle reads, appends and writes back)."""

    def __init__(self, rate: str | None = None) -> None:
        self.rate = rate
        self.retry_after = 1

    def allow_request(self, request: HttpRequest) -> bool:
        limit, window = parse_rate(self.rate or settings.API_RATE_LIMIT)
        api_key: ApiKey | None = getattr(request, "api_key", None)
        if api_key is not None:
            ident = f"key:{api_key.pk}"
        elif request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{client_address(request)}"
        verdict = ratelimit.hit(f"api:{ident}", limit=limit, window=window)
        self.retry_after = verdict.retry_after
        return verdict.allowed

    def wait(self) -> float | None:
        return float(self.retry_after)


api_auth = [ApiKeyAuth(), StaffSessionAuth(), anonymous_limit]


def docs_access(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The docs page and the schema (SPEC §11): staff sessions, and API keys with the ``docs``
    scope; anyone else is sent to the admin login (a browser) or gets 401/403 in the envelope."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated and request.user.is_staff:
            return view(request, *args, **kwargs)
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            api_key = api_key_authenticate(plaintext=token.strip())
            if api_key is not None and ApiKey.Scope.DOCS in api_key.scopes:
                return view(request, *args, **kwargs)
            if api_key is not None:
                return _json_error(403, "permission_denied", "This API key lacks the 'docs' scope.")
            return _json_error(401, "not_authenticated", "The API key is not valid.")
        if request.path.rstrip("/").endswith("/docs") or "text/html" in request.headers.get(
            "Accept", ""
        ):
            return redirect_to_login(request.get_full_path(), "admin:login")
        return _json_error(
            401, "not_authenticated", "Log in as staff, or send an API key with the 'docs' scope."
        )

    return wrapper


def _json_error(status: int, code: str, message: str) -> HttpResponse:
    import json

    response = HttpResponse(
        json.dumps(error_body(code, message)), status=status, content_type="application/json"
    )
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="actiondesk"'
    response.envelope = True  # type: ignore[attr-defined]
    return response


def require(request: HttpRequest, *, scope: str, permission: str | None = None) -> None:
    """Refuse (403) a key without ``scope`` or a user without ``permission``."""
    api_key: ApiKey | None = getattr(request, "api_key", None)
    if api_key is not None and scope not in api_key.scopes:
        raise AuthorizationError(message=f"This API key lacks the '{scope}' scope.")
    if permission and not request.user.has_perm(permission):
        raise AuthorizationError(message=f"Your role lacks the '{permission}' permission.")
