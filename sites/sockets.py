"""The WebSocket origin check: our own hosts (``ALLOWED_HOSTS``) for every socket, and a
site's origins only for that site's own chat conversations."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlparse

import structlog
from channels.db import database_sync_to_async
from channels.security.websocket import OriginValidator, WebsocketDenier
from django.conf import settings

from sites.origins import origin_normalise

logger = structlog.get_logger(__name__)

CHAT_PATH = re.compile(r"^/ws/chat/(?P<id>[0-9a-fA-F-]{36})/$")


def _origin_header(scope: dict[str, Any]) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"origin":
            try:
                return bytes(value).decode("latin1")
            except UnicodeDecodeError:
                return None
    return None


def _site_allows(conversation_id: str, origin: str) -> bool:
    from sites.selectors import site_for_conversation

    site = site_for_conversation(conversation_id=conversation_id)
    return site is not None and site.enabled and origin in site.origins


class SiteOriginValidator(OriginValidator):
    def __init__(self, application: Any) -> None:
        hosts = list(settings.ALLOWED_HOSTS)
        if settings.DEBUG and not hosts:
            hosts = ["localhost", "127.0.0.1", "[::1]"]
        super().__init__(application, hosts)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        raw = _origin_header(scope)
        parsed = None
        if raw is not None:
            try:
                parsed = urlparse(raw)
            except ValueError:
                parsed = None
        if self.valid_origin(parsed):
            return await self.application(scope, receive, send)
        origin = origin_normalise(raw or "")
        match = CHAT_PATH.match(scope.get("path", ""))
        if origin and match and await database_sync_to_async(_site_allows)(match["id"], origin):
            return await self.application(scope, receive, send)
        logger.warning("socket_origin_refused", origin=(raw or "")[:200], path=scope.get("path"))
        return await WebsocketDenier()(scope, receive, send)
