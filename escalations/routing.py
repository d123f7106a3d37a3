from __future__ import annotations

from django.urls import path

from escalations.consumers import EscalationQueueConsumer

websocket_urlpatterns = [
    path("ws/escalations/", EscalationQueueConsumer.as_asgi()),
]
