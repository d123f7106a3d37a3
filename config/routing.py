"""Every app's WebSocket routes, gathered in one list for ``asgi.py``."""

from __future__ import annotations

from django.urls import path

from config.consumers import PingConsumer
from conversations.routing import websocket_urlpatterns as chat_patterns
from escalations.routing import websocket_urlpatterns as escalation_patterns

websocket_urlpatterns = [
    path("ws/ping/", PingConsumer.as_asgi()),
    *chat_patterns,
    *escalation_patterns,
]
