"""A WebSocket liveness probe: load balancers and operators check that upgrades get through the
proxy and the origin check, and that the process answers frames."""

from __future__ import annotations

import json

import structlog
from channels.generic.websocket import AsyncWebsocketConsumer

from config.logging import bind_ws_context

logger = structlog.get_logger(__name__)


class PingConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        bind_ws_context(self.scope)
        await self.accept()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            frame = json.loads(text_data or "")
        except ValueError:
            frame = None
        if isinstance(frame, dict) and frame.get("type") == "ping":
            await self.send(json.dumps({"type": "pong"}))
            return
        await self.send(
            json.dumps(
                {"type": "error", "code": "invalid_frame", "message": 'Send {"type": "ping"}.'}
            )
        )
