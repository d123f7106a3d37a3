"""The signed visitor cookie that binds an anonymous customer to their conversations."""

from __future__ import annotations

import secrets
from typing import Any

from django.http import HttpRequest, HttpResponse

COOKIE = "ad_visitor"
SALT = "actiondesk.visitor"
MAX_AGE = 60 * 60 * 24 * 90


def new_visitor_id() -> str:
    return secrets.token_urlsafe(18)


def visitor_from_request(request: HttpRequest) -> str | None:
    value = request.get_signed_cookie(COOKIE, default=None, salt=SALT, max_age=MAX_AGE)
    return str(value) if value else None


def visitor_from_scope(scope: dict[str, Any]) -> str | None:
    """The same cookie read from a WebSocket handshake (``CookieMiddleware`` parsed it), through
    Django's own reader so the salt scheme always matches ``set_signed_cookie``."""
    request = HttpRequest()
    request.COOKIES = dict(scope.get("cookies", {}))
    return visitor_from_request(request)


def set_visitor_cookie(response: HttpResponse, visitor_id: str, *, secure: bool) -> None:
    response.set_signed_cookie(
        COOKIE,
        visitor_id,
        salt=SALT,
        max_age=MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=secure,
    )
